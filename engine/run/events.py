"""Transitions as structured events (structlog): one event per status change, with the
decisive values (the condition and case chosen, the `equal` that did not match, the skipped
predecessor, the executor error)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from engine.protocols import EventSink, Transition


def event_fields(transition: Transition) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "job_id": transition.job_id,
        "node_id": transition.node_id,
        "template_id": transition.template_id,
        "iteration": transition.iteration_index,
        "from_status": transition.from_status,
        "to_status": transition.to_status,
        "at": transition.at,
    }
    if transition.reason is not None:
        fields["reason"] = transition.reason
    if transition.details:
        fields["details"] = dict(transition.details)
    return fields


def event_logger(*, log_format: str = "json", stream: TextIO | None = None) -> Any:
    """A structlog logger writing one event a line (`json` or `text`) to `stream` (stderr)."""
    import structlog  # imported here: a command without logs does not pay for it

    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.wrap_logger(
        structlog.PrintLogger(stream or sys.stderr),
        processors=[structlog.processors.add_log_level, renderer],
    )


def logging_sink(
    *, log_format: str = "json", stream: TextIO | None = None, logger: Any = None
) -> EventSink:
    """A sink that writes every transition as a structlog event (`json` or `text`)."""
    logger = logger or event_logger(log_format=log_format, stream=stream)

    def sink(transition: Transition) -> None:
        event = "job" if transition.node_id is None else "node"
        logger.info(event, **event_fields(transition))

    return sink
