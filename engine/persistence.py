"""Between the runner and a store: recording outcomes in batches, and rebuilding a job from its
recorded outcomes after a restart (finished nodes keep their results and are never re-run)."""

from __future__ import annotations

from typing import Any

from .compiler import Plan
from .instances import Instance
from .protocols import (
    Asset,
    Completed,
    Delegate,
    Expand,
    Failed,
    JobStatus,
    Outcome,
    OutcomeRecord,
    RunChild,
    Store,
    Transition,
    Wait,
)
from .scheduler import Clock, Scheduler


def outcome_record(instance: Instance, outcome: Outcome) -> OutcomeRecord:
    """The record of an outcome applied to `instance`."""
    node_id = instance.id
    if isinstance(outcome, Completed):
        return OutcomeRecord(
            node_id,
            "completed",
            {
                "outputs": outcome.outputs,
                "assets": [a.to_json() for a in outcome.assets],
                "details": outcome.details,
            },
        )
    if isinstance(outcome, Failed):
        return OutcomeRecord(node_id, "failed", {"message": outcome.message})
    if isinstance(outcome, Expand):
        return OutcomeRecord(node_id, "expand", {"items": outcome.items})
    if isinstance(outcome, Wait):
        return OutcomeRecord(node_id, "wait", {"items": outcome.items})
    if isinstance(outcome, Delegate | RunChild):
        return OutcomeRecord(
            node_id, "call", {"attempt": instance.attempt, "jobId": instance.job_id}
        )
    raise TypeError(f"cannot record outcome {outcome!r}")


def decode_outcome(record: OutcomeRecord) -> Outcome:
    payload = record.payload
    if record.kind == "completed":
        assets = [Asset(a["assetId"], a["url"], a.get("kind", "image")) for a in payload["assets"]]
        return Completed(payload["outputs"], assets=assets, details=payload.get("details"))
    if record.kind == "failed":
        return Failed(payload["message"])
    if record.kind == "expand":
        return Expand(payload["items"])
    if record.kind == "wait":
        return Wait(payload["items"])
    raise ValueError(f"record of kind `{record.kind}` is not a node outcome")


class Recorder:
    """Collects outcomes; `take()` hands over what is pending, for one store transaction."""

    def __init__(
        self, scheduler: Scheduler, store: Store | None, *, restored: bool = False
    ) -> None:
        self.scheduler = scheduler
        self.store = store
        self.pending: list[OutcomeRecord] = []
        # a restored job's replayed transitions are in the store already
        self.flushed_transitions = len(scheduler.transitions) if restored else 0

    def add(self, instance: Instance, outcome: Outcome) -> None:
        if self.store is not None:
            self.pending.append(outcome_record(instance, outcome))

    def add_record(self, record: OutcomeRecord) -> None:
        if self.store is not None:
            self.pending.append(record)

    def take(self) -> tuple[list[OutcomeRecord], list[Transition], int]:
        """Pending outcomes, unflushed transitions, and the transition count they reach."""
        outcomes, self.pending = self.pending, []
        end = len(self.scheduler.transitions)
        transitions = self.scheduler.transitions[self.flushed_transitions : end]
        return outcomes, transitions, end

    def write(self, outcomes: list[OutcomeRecord], transitions: list[Transition], end: int) -> None:
        """Write one batch (may run in a worker thread); then it counts as flushed."""
        if self.store is not None:
            self.store.record(self.scheduler.job_id, outcomes, transitions)
        self.flushed_transitions = end


def restore(
    plan: Plan,
    *,
    job_id: str,
    inputs: dict[str, Any],
    keep_going: bool,
    clock: Clock,
    outcomes: list[OutcomeRecord],
    history: list[tuple[str, JobStatus]] | None,
) -> tuple[Scheduler, list[Instance]]:
    """Rebuild a scheduler by replaying recorded outcomes.

    Returns the scheduler and the instances it handed out that have no recorded result: the
    runner must start those (delegated calls among them keep their recorded attempt, so the
    executor sees the same idempotency key).
    """
    results: dict[str, OutcomeRecord] = {}
    calls: dict[str, dict[str, Any]] = {}
    decisions: dict[str, Any] = {}
    cancel_reason: str | None = None
    for record in outcomes:
        if record.kind == "call":
            calls[record.node_id] = record.payload
        elif record.kind == "decision":
            decisions[record.node_id] = record.payload["decision"]
        elif record.kind == "cancel":
            cancel_reason = record.payload["reason"]
        else:
            results[record.node_id] = record
    scheduler = Scheduler(plan, job_id=job_id, inputs=inputs, keep_going=keep_going, clock=clock)
    scheduler.start()
    live: list[Instance] = []
    batch = scheduler.ready()
    while batch:
        for instance in batch:
            call = calls.get(instance.id)
            if call is not None:
                instance.attempt = int(call["attempt"])
                instance.job_id = call.get("jobId")
            result = results.get(instance.id)
            if result is None:
                if call is not None:
                    instance.attempt -= 1  # the runner counts the attempt again when it starts
                live.append(instance)
                continue
            scheduler.apply(instance, decode_outcome(result))
            if result.kind == "wait" and instance.id in decisions and not scheduler.finished:
                scheduler.decide(instance.id, decisions[instance.id])
        batch = scheduler.ready()
    if cancel_reason is not None and not scheduler.finished:
        scheduler.cancel(cancel_reason)
    if history:
        scheduler.status_history = list(history)
    return scheduler, live
