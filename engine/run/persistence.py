"""Between the runner and a store: recording outcomes in batches, and rebuilding a job from its
recorded outcomes after a restart (finished nodes keep their results and are never re-run)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.compile.compiler import Plan
from engine.errors import FlowgraphError
from engine.limits import Limits
from engine.protocols import (
    Asset,
    AssetOutputs,
    ChildRejected,
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
from engine.run.instances import Instance
from engine.run.scheduler import Clock, Scheduler

# a named tuple made from its fields' tuple (see `answered_record`)
_new_record = tuple.__new__


def outcome_record(
    instance: Instance, outcome: Outcome | ChildRejected, *, with_call: bool = False
) -> OutcomeRecord:
    """The record of an outcome applied to `instance`. `with_call`: the outcome of a call
    started and answered in one step (see `BatchExecutor`), whose record stands for its `call`
    record too: it carries the call's attempt and job id."""
    node_id = instance.id
    if isinstance(outcome, Completed):  # first: every inline node's (a transform's) outcome
        if with_call:
            return answered_record(instance, outcome)
        outputs = outcome.outputs
        assets = outcome.assets
        if type(outputs) is AssetOutputs:
            # its assets' ids: the record's assets give them back (none: `output` is kept)
            outputs = {} if assets else dict(outputs)
        completed: dict[str, Any] = {
            "outputs": outputs,
            # none, an inline node's: no comprehension made for them
            "assets": [a.to_json() for a in assets] if assets else [],
            "details": outcome.details,
        }
        return _new_record(OutcomeRecord, (node_id, "completed", completed))
    if isinstance(outcome, Failed):
        failed: dict[str, Any] = {"message": outcome.message}
        if with_call:
            failed["call"] = {"attempt": instance.attempt, "jobId": instance.job_id}
        return OutcomeRecord(node_id, "failed", failed)
    if isinstance(outcome, Expand):
        return OutcomeRecord(node_id, "expand", {"items": outcome.items})
    if isinstance(outcome, Wait):
        return OutcomeRecord(node_id, "wait", {"items": outcome.items})
    if isinstance(outcome, Delegate | RunChild):
        return OutcomeRecord(
            node_id, "call", {"attempt": instance.attempt, "jobId": instance.job_id}
        )
    if isinstance(outcome, ChildRejected):
        return OutcomeRecord(node_id, "child-rejected", {"gate": outcome.gate})
    raise TypeError(f"cannot record outcome {outcome!r}")


def answered_record(instance: Instance, outcome: Completed) -> OutcomeRecord:
    """The record of a call started and answered in one step, completed (what a batch
    executor's fan-out makes one of per node): a list, `[attempt, jobId, assets as [assetId,
    url, kind], outputs, details]`, outputs null when they are the assets' ids. Half the bytes
    of a `completed` record with its `call`, and no dict to build or encode."""
    outputs: Mapping[str, Any] | None = outcome.outputs
    assets = outcome.assets
    if type(outputs) is AssetOutputs:
        outputs = None if assets else dict(outputs)
    if len(assets) == 1:  # the usual answer: no comprehension made per node
        asset = assets[0]
        listed = [[asset.asset_id, asset.url, asset.kind]]
    else:
        listed = [[a.asset_id, a.url, a.kind] for a in assets]
    # made from a tuple, as the scheduler makes transitions: the named tuple's own `__new__`
    # is a Python function, and a fan-out makes a record per node
    return _new_record(
        OutcomeRecord,
        (
            instance.id,
            "answered",
            [instance.attempt, instance.job_id, listed, outputs, outcome.details],
        ),
    )


def decode_outcome(record: OutcomeRecord) -> Outcome | ChildRejected:
    payload = record.payload
    if record.kind == "answered":
        _, _, assets, outputs, details = payload
        return Completed(
            {} if outputs is None else outputs,
            assets=[Asset(*asset) for asset in assets],
            details=details,
        )
    if record.kind == "completed":
        assets = [Asset(a["assetId"], a["url"], a.get("kind", "image")) for a in payload["assets"]]
        return Completed(payload["outputs"], assets=assets, details=payload.get("details"))
    if record.kind == "failed":
        return Failed(payload["message"])
    if record.kind == "expand":
        return Expand(payload["items"])
    if record.kind == "wait":
        return Wait(payload["items"])
    if record.kind == "child-rejected":
        return ChildRejected(payload["gate"])
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
        self.flushed_transitions = scheduler.transition_count if restored else 0

    def add(self, instance: Instance, outcome: Outcome | ChildRejected) -> None:
        if self.store is not None:
            self.pending.append(outcome_record(instance, outcome))

    def add_answered(self, instance: Instance, outcome: Completed | Failed) -> None:
        """The outcome of a call started and answered in one step (no `call` record before)."""
        if self.store is not None:
            self.pending.append(
                answered_record(instance, outcome)
                if type(outcome) is Completed
                else outcome_record(instance, outcome, with_call=True)
            )

    def add_completed(self, completed: list[tuple[Instance, Completed]]) -> None:
        """`add_answered` for calls completed in one step together (see `answered_all`)."""
        if self.store is not None:
            self.pending.extend(
                [answered_record(instance, outcome) for instance, outcome in completed]
            )

    def add_record(self, record: OutcomeRecord) -> None:
        if self.store is not None:
            self.pending.append(record)

    def take(self) -> tuple[list[OutcomeRecord], list[Transition], int]:
        """Pending outcomes, unflushed transitions, and the transition count they reach."""
        outcomes, self.pending = self.pending, []
        end = self.scheduler.transition_count
        return outcomes, self.scheduler.transitions_between(self.flushed_transitions, end), end

    def write(self, outcomes: list[OutcomeRecord], transitions: list[Transition], end: int) -> None:
        """Write one batch (may run in a worker thread); then it counts as flushed."""
        if self.store is not None:
            try:
                self.store.record(self.scheduler.job_id, outcomes, transitions)
            except BaseException:
                self.pending[:0] = outcomes  # not written: the next flush tries them again
                raise
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
    updated_at: str | None = None,
    limits: Limits | None = None,
) -> tuple[Scheduler, list[Instance], dict[str, str]]:
    """Rebuild a scheduler by replaying recorded outcomes in the order they were applied.

    Returns the scheduler, the instances it handed out that have no recorded result (the
    runner must start those: delegated calls among them keep their recorded attempt, so the
    executor sees the same idempotency key), and the remote jobs that unfinished calls had
    started, by node id (the executor is given them back to poll). The store has the
    transitions the replay goes through: they are counted, not made again; the job was last
    changed `updated_at`.
    """
    scheduler = Scheduler(
        plan, job_id=job_id, inputs=inputs, keep_going=keep_going, clock=clock, limits=limits
    )
    scheduler.replaying = True
    scheduler.start()
    started: dict[str, Instance] = {}
    called: dict[str, dict[str, Any]] = {}
    remote: dict[str, str] = {}  # node id -> the remote job its unfinished call started

    def take(node_id: str) -> Instance:
        # hand out in the order the run did (first resolved first), only as far as this node:
        # what the run had not handed out stays `pending`, for the runner to hand out as it
        # would have (a bounded number at a time, each with its transition in the event log)
        while node_id not in started:
            batch = scheduler.ready(1)
            if not batch:
                break
            started[batch[0].id] = batch[0]
        found = started.pop(node_id, None)
        if found is None:
            raise JobReplayError(
                f"job `{job_id}` cannot be rebuilt: its log has an outcome for `{node_id}`, "
                "which is not ready at that point of the replay"
            )
        return found

    for record in outcomes:
        if scheduler.finished:
            break
        if record.kind == "decision":
            scheduler.decide(record.node_id, record.payload["decision"])
        elif record.kind == "cancel":
            scheduler.cancel(record.payload["reason"])
        elif record.kind == "abort":
            scheduler.abort(record.payload["message"])
        elif record.kind == "call":
            instance = take(record.node_id)
            instance.attempt = int(record.payload["attempt"])
            instance.job_id = record.payload.get("jobId")
            called[instance.id] = record.payload
            started[instance.id] = instance
            remote.pop(instance.id, None)
        elif record.kind == "remote":
            calling = started.get(record.node_id)
            if calling is not None:
                calling.job_id = remote[calling.id] = record.payload["jobId"]
        else:
            instance = take(record.node_id)
            if record.kind == "answered":  # a call answered as it started: one record for both
                instance.attempt = int(record.payload[0])
                instance.job_id = record.payload[1]
            elif (call := record.payload.get("call")) is not None:  # the same, as a dict
                instance.attempt = int(call["attempt"])
                instance.job_id = call.get("jobId")
            called.pop(instance.id, None)
            remote.pop(instance.id, None)
            scheduler.apply(instance, decode_outcome(record))
    live: list[Instance] = []
    if scheduler.halting:
        # a failure stopped the job: calls that had not finished are not started again
        for instance in list(started.values()):
            scheduler.withdraw(instance)
    elif not scheduler.finished:
        for instance in started.values():
            if instance.id in called:
                instance.attempt -= 1  # the runner counts the attempt again when it starts
            live.append(instance)
    scheduler.replayed(updated_at)
    if history:
        scheduler.status_history = list(history)
    return scheduler, live, remote


class JobReplayError(FlowgraphError, RuntimeError):
    """A stored job whose outcome log does not fit its workflow."""
