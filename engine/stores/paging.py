"""Newest-first pages of jobs with an opaque cursor (shared by the stores)."""

from __future__ import annotations

import base64
import json

from engine.protocols import JobRecord


def encode_cursor(created_at: str, job_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, job_id]).encode()).decode()


MAX_TOKEN = 256  # characters: the tokens handed out are under 100


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Raises ValueError for a cursor this store did not hand out."""
    invalid = ValueError(f"invalid pagination token `{shown_token(cursor)}`")
    if len(cursor) > MAX_TOKEN:
        raise invalid
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, RecursionError):
        raise invalid from None
    if not isinstance(created_at, str) or not isinstance(job_id, str):
        raise invalid
    return created_at, job_id


def shown_token(token: str) -> str:
    """A token as an error message quotes it: at most 40 characters."""
    return token if len(token) <= 40 else token[:39] + "…"


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
