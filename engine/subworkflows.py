"""What `workflow` nodes need from the engine: running a child job, following it through its
gates, deciding those gates from the parent, and carrying both on (see engine/run/children.py
for how a parent job sees its children's gates).

A child job runs inside its workflow node's call. When it stops at gates, the node parks (it
stays `processing`, its job lists the child's gates by path) and the parent stops as for a gate
of its own. A decision for such a gate, by path from the parent or to the child job itself,
starts the node again: its call carries the child on and reports how it ended (or where it
waits now), so a child never runs beside its parent's call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import DecisionError, FlowgraphError
from engine.protocols import (
    TERMINAL_JOB,
    CallResult,
    ChildRejected,
    ChildWaits,
    Completed,
    Failed,
    JobStatus,
    NodeCall,
    NodeStatus,
    OutcomeRecord,
)
from engine.run.children import SEPARATOR, ChildGate, child_gates
from engine.run.instances import Instance, named_by
from engine.run.job import node_document
from engine.run.scheduler import Scheduler

if TYPE_CHECKING:
    from engine.api import Engine, JobRun

MAX_WORKFLOW_DEPTH = 8

# A gate inside sub-workflows, as a decision by path reaches it: the (job, workflow node) pairs
# from the job addressed down to the child job that holds the gate, that job, and the gate's
# key there (its id, template id or clone-id prefix).
Target = tuple[list[tuple["JobRun", Instance]], "JobRun", str]


class SubWorkflows:
    """The engine's child jobs: one per started `workflow` node, its id the node's `jobId`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ----- running a child ----------------------------------------------------------------------

    async def run(
        self,
        parent: JobRun,
        holder: Instance,
        call: NodeCall,
        workflow_id: str,
        lineage: tuple[str, ...],
    ) -> CallResult:
        """Run `workflow_id` as `holder`'s child job, whose id is the node's `jobId` (so that
        the job is found by it); a child that exists already (a resumed parent, or a node
        started again after a decision reached its child) carries on from where it is."""
        try:
            child = self.existing(holder.job_id) or self._create(
                parent, holder, call, workflow_id, lineage
            )
        except ValueError as error:
            return Failed(f"sub-workflow `{workflow_id}`: {error}")
        if isinstance(child, Failed):
            return child
        await self.engine.advance_itself(child)  # runs again for decisions that come meanwhile
        return self.outcome(child, holder, workflow_id)

    def _create(
        self,
        parent: JobRun,
        holder: Instance,
        call: NodeCall,
        workflow_id: str,
        lineage: tuple[str, ...],
    ) -> JobRun | Failed:
        """A new child job (queued), the node's inputs passed to the inputs it declares; or
        why there can be none. Raises ValueError for inputs the child refuses."""
        engine = self.engine
        workflow = engine.workflow(workflow_id)
        if workflow is None:
            known = ", ".join(f"`{w}`" for w in engine.workflows) or "none"
            return Failed(f"unknown workflow `{workflow_id}`; registered: {known}")
        if workflow_id in lineage:
            return Failed("cycle of workflows: " + " -> ".join([*lineage, workflow_id]))
        if len(lineage) >= MAX_WORKFLOW_DEPTH:
            return Failed(f"sub-workflows nested deeper than {MAX_WORKFLOW_DEPTH}")
        declared = {i.name for i in workflow.inputs}
        inputs = {k: v for k, v in call.inputs.items() if k in declared and v is not None}
        return engine.prepare(
            workflow, inputs, parent=parent, lineage=lineage, job_id=holder.job_id
        )

    def existing(self, job_id: str | None) -> JobRun | None:
        """The child job `job_id`: live, else rebuilt from the store; None when it was never
        created (or has no id yet)."""
        if job_id is None:
            return None
        live = self.engine.jobs.get(job_id)
        if live is not None:
            return live
        store = self.engine.store
        if store is None or store.get_job(job_id) is None:
            return None
        return self.engine.get(job_id)

    def outcome(self, child: JobRun, holder: Instance, workflow_id: str) -> CallResult:
        """What `holder` makes of its child as it stands: its outputs, the gates it waits at, a
        reject that canceled it, or a failure."""
        if child.status is JobStatus.SUCCESS:
            metadata = child.document()["metadata"]
            chosen = set(metadata["assetIds"])
            assets = [
                a
                for i in child.scheduler.instances.values()
                for a in i.assets
                if a.asset_id in chosen
            ]
            return Completed(
                {"output": list(metadata["assetIds"]), "all": metadata["output"]}, assets=assets
            )
        rejected = child.scheduler.rejected_at
        if child.status is JobStatus.CANCELED and rejected is not None:
            return ChildRejected(f"{holder.id}{SEPARATOR}{rejected}")
        if not child.scheduler.finished and child.waiting:
            return ChildWaits(child.job_id, self.gates_below(child, holder))
        error = child.scheduler.error or child.scheduler.cancel_reason or "no error"
        return Failed(
            f"sub-workflow `{workflow_id}` (job `{child.job_id}`) ended {child.status}: {error}"
        )

    @staticmethod
    def gates_below(child: JobRun, holder: Instance) -> tuple[ChildGate, ...]:
        """The gates `child` waits at, named from `holder`'s job."""
        scheduler = child.scheduler
        own = [(g, node_document(child.plan, g)) for g in scheduler.waiting.values()]
        nested = [gate for waits in scheduler.parked.values() for gate in waits.gates]
        return child_gates(holder, child.job_id, own, nested)

    # ----- after a restore ----------------------------------------------------------------------

    def repark(self, scheduler: Scheduler, starting: list[Instance]) -> list[Instance]:
        """Of the nodes a restored job would start, the workflow nodes whose child waits at
        gates (with nothing of its own to run) park again at once, so that the job lists
        those gates before it runs; the others are returned, to be started."""
        kept = []
        for instance in starting:
            child = None
            if instance.template.type == "workflow":
                child = self.existing(instance.job_id)
            if child is not None and parked(child):
                scheduler.apply(
                    instance, ChildWaits(child.job_id, self.gates_below(child, instance))
                )
            else:
                kept.append(instance)
        return kept

    # ----- carrying a parent on ----------------------------------------------------------------

    def parent_to_carry(self, job: JobRun) -> JobRun | None:
        """The parent job whose workflow node waits on `job` (parked at its gates, or to be
        started again after a restore), with that node woken: carrying the parent on carries
        `job` on, inside the node's call. None when no parent waits on `job` (it has none, or
        the node's call is running it now). A call queued for a worker counts as waiting: the
        parent's run starts it, so the child runs under the parent's cancel scope."""
        if job.parent_job_id is None:
            return None
        try:
            parent = self.engine.get(job.parent_job_id)
        except FlowgraphError:  # a parent the engine cannot find: the child runs alone
            return None
        scheduler = parent.scheduler
        if scheduler.finished:
            return None
        holder = next(
            (
                i
                for i in scheduler.instances.values()
                if i.job_id == job.job_id and i.status is NodeStatus.PROCESSING
            ),
            None,
        )
        if holder is None or holder.id in scheduler.running:
            return None
        if holder.id in scheduler.parked:
            scheduler.unpark(holder)
        return parent

    async def end_children(self, job: JobRun, reason: str) -> None:
        """Cancel the unfinished child jobs of `job`'s workflow nodes (`job` has ended or was
        canceled: nothing would decide their gates or use their results)."""
        if not any(t.type == "workflow" for t in job.plan.nodes.values()):
            return
        for instance in list(job.scheduler.instances.values()):
            if instance.template.type != "workflow" or instance.status is NodeStatus.SUCCESS:
                continue
            child = self.existing(instance.job_id)
            if child is None:
                continue
            if child.advancing is not None:  # its run, cut short with its parent's, is ending
                await child.advancing.wait()
            if not child.scheduler.finished:
                await self.engine.cancel(child.job_id, reason=reason)

    # ----- after a stop between a parent's end and its children's -----------------------------

    def mend(self, job: JobRun) -> None:
        """Cancel, in the store too, the unfinished child jobs a restored job left behind when
        it ended otherwise than in success, or `job` itself when it is such a child: a process
        that stopped between a parent's end and its children's leaves them waiting, and
        nothing would ever decide for them or use their result."""
        store = self.engine.store
        if store is None:
            return
        scheduler = job.scheduler
        if scheduler.finished and job.status is not JobStatus.SUCCESS:
            reason = f"its parent job `{job.job_id}` ended {job.status}"
            for instance in scheduler.instances.values():
                if instance.template.type != "workflow" or instance.job_id is None:
                    continue
                summary = store.job_summary(instance.job_id)
                if summary is None or summary.status in TERMINAL_JOB:
                    continue
                try:
                    child = self.engine.get(instance.job_id)
                except FlowgraphError:  # a child that cannot be rebuilt stays as it is
                    continue
                self._end_orphan(child, reason)
        elif not scheduler.finished and job.parent_job_id is not None:
            parent = store.job_summary(job.parent_job_id)
            if parent is None or parent.status in TERMINAL_JOB:
                ended = f"ended {parent.status}" if parent is not None else "is gone"
                self._end_orphan(job, f"its parent job `{job.parent_job_id}` {ended}")

    def _end_orphan(self, job: JobRun, reason: str) -> None:
        if job.scheduler.finished:
            return
        job.runner.pending_start = []
        job.runner.cancel(reason)
        self.engine.record_now(job)
        self.mend(job)  # its own children, a level further down

    # ----- decisions by path ---------------------------------------------------------------------

    def decide(
        self, job: JobRun, node_id: str, decision: Any, gate_type: str | None = None
    ) -> list[str] | None:
        """Apply a decision keyed by a path into `job`'s sub-workflows (`sub/approve`): to the
        gates it names in the child jobs, every one of which must take it (and be of
        `gate_type`, when given), else nothing changes; the workflow nodes waiting on them
        start again. None when `node_id` is no such path (a gate of `job` itself, or nothing
        the scheduler knows of)."""
        targets = self.targets(job, node_id)
        if targets is None:
            return None
        for _, child, key in targets:
            for gate in child.scheduler.waiting_gates(key):
                check_gate_type(node_id, gate.template.type, gate_type)
                gate.template.kind.decide(gate.template.node, gate.items, decision)  # type: ignore[attr-defined]
        decided = []
        for chain, child, key in targets:
            path = SEPARATOR.join(holder.id for _, holder in chain)
            decided += [f"{path}{SEPARATOR}{g}" for g in decide_here(child, key, decision)]
            for parent, holder in chain:
                if holder.id in parent.scheduler.parked:
                    parent.scheduler.unpark(holder)
            for running in [*(parent for parent, _ in chain[1:]), child]:
                if running.runner.active and not running.runner.closing:
                    running.runner.pump()  # a child running now carries on at once
        return decided

    def targets(self, job: JobRun, key: str) -> list[Target] | None:
        """Where a decision keyed `key` lands when it is a path into `job`'s sub-workflows:
        every child job, below the workflow nodes its first part names (an id, a template id
        or a clone-id prefix), where the rest names waiting gates. None when `key` names a
        gate of `job` itself or is no such path. Raises DecisionError saying why a path
        reaches no waiting gate."""
        if job.scheduler.finished or job.scheduler.waiting_gates(key):
            return None
        split = self._split(job, key)
        if split is None:
            return None
        holders, rest = split
        found: list[Target] = []
        refusals = []
        for holder in holders:
            child = self.existing(holder.job_id)
            if child is None:
                continue
            try:
                below = self.targets(child, rest)
            except DecisionError as error:  # a deeper path that reaches nothing in this child
                refusals.append(str(error))
                continue
            if below is not None:
                found += [([(job, holder), *chain], leaf, k) for chain, leaf, k in below]
            elif not child.scheduler.finished and child.scheduler.waiting_gates(rest):
                found.append(([(job, holder)], child, rest))
            else:
                refusals.append(self._refusal(child, holder, rest))
        if not found:
            raise DecisionError(refusals[0] if refusals else self._not_waiting(job, key))
        return found

    def _split(self, job: JobRun, key: str) -> tuple[list[Instance], str] | None:
        """`key` cut at its first `/` whose first part names workflow nodes of `job` waiting
        on a child job, with those nodes; None when no first part names a workflow node.
        Raises DecisionError when one does, but none of its nodes waits on a child."""
        start = 0
        named = None
        while (cut := key.find(SEPARATOR, start)) != -1:
            head, rest = key[:cut], key[cut + 1 :]
            start = cut + 1
            holders = [
                i for i in named_by(head, job.scheduler.instances) if i.template.type == "workflow"
            ]
            working = [i for i in holders if i.status is NodeStatus.PROCESSING and i.job_id]
            if working:
                return working, rest
            template = job.plan.nodes.get(head)
            if holders or (template is not None and template.type == "workflow"):
                named = named or head
        if named is not None:
            raise DecisionError(self._not_waiting(job, key, named))
        return None

    @staticmethod
    def _refusal(child: JobRun, holder: Instance, key: str) -> str:
        scheduler = child.scheduler
        where = (
            f"`{holder.id}{SEPARATOR}{key}`: in job `{child.job_id}` (the sub-workflow of "
            f"`{holder.id}`)"
        )
        if scheduler.finished:
            return f"{where}: the job is finished ({scheduler.status}); decisions no longer apply"
        return f"{where}: {scheduler.not_waiting_message(key)}"

    @staticmethod
    def _not_waiting(job: JobRun, key: str, head: str | None = None) -> str:
        if head is None:
            return job.scheduler.not_waiting_message(key)
        waiting = ", ".join(f"`{g.id}`" for g in job.waiting) or "none"
        statuses = sorted({i.status.value for i in named_by(head, job.scheduler.instances)}) or [
            "not started"
        ]
        return (
            f"`{key}`: workflow node `{head}` does not wait at a gate of its sub-workflow "
            f"(it is {', '.join(statuses)}); waiting gates: {waiting}"
        )


def check_gate_type(node_id: str, node_type: str, gate_type: str | None) -> None:
    """Raises DecisionError when a decision sent for a `gate_type` gate names a node of
    another type (an approval sent to a selection)."""
    if gate_type is not None and node_type != gate_type:
        raise DecisionError(f"node `{node_id}` is a `{node_type}` node, not a `{gate_type}` node")


def decide_here(
    job: JobRun, node_id: str, decision: Any, gate_type: str | None = None
) -> list[str]:
    """A decision for gates of `job` itself (of `gate_type`, when given), applied and recorded
    in its log; returns the gates decided. Raises DecisionError, changing nothing, when it
    cannot apply."""
    template = job.plan.nodes.get(node_id.split("#", 1)[0])
    if template is not None:
        check_gate_type(node_id, template.type, gate_type)
    decided = job.scheduler.decide(node_id, decision)
    for gate_id in decided:
        job.runner.recorder.add_record(OutcomeRecord(gate_id, "decision", {"decision": decision}))
    return decided


def parked(job: JobRun) -> bool:
    """Whether a job waits at gates with nothing of its own left to run."""
    scheduler = job.scheduler
    return not scheduler.finished and not scheduler.is_active() and bool(job.waiting)
