"""Newest-first pages of jobs with an opaque cursor (shared by the stores)."""

from __future__ import annotations

import base64
import json

from engine.protocols import JobRecord


def encode_cursor(created_at: str, job_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, job_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Raises ValueError for a cursor this store did not hand out."""
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as error:
        raise ValueError(f"invalid pagination token `{cursor}`") from error
    return str(created_at), str(job_id)


def page(
    jobs: list[JobRecord], *, limit: int, cursor: str | None
) -> tuple[list[JobRecord], str | None]:
    ordered = sorted(jobs, key=lambda j: (j.created_at, j.job_id), reverse=True)
    if cursor is not None:
        after = decode_cursor(cursor)
        ordered = [j for j in ordered if (j.created_at, j.job_id) < after]
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return chosen, encode_cursor(
        chosen[-1].created_at, chosen[-1].job_id
    ) if more and chosen else None
