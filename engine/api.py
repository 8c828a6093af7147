"""The facade every surface uses: compile, run, decide, cancel, read jobs."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from time import monotonic
from typing import Any

import anyio
from anyio.lowlevel import RunVar

from engine.compile.compiler import Plan, compile_flow
from engine.compile.document import load_workflow, read_document
from engine.compile.models import Workflow
from engine.compile.run_inputs import validate_run_inputs
from engine.errors import (
    FlowgraphError,
    StoreError,
    UnknownJobError,
    first_cause,
    internal_message,
)
from engine.executors import CallPolicy, DryRunExecutor, ExecutorRouter, PythonExecutor, Route
from engine.gc_tuning import quiet_gc
from engine.limits import Limits
from engine.protocols import (
    CallResult,
    EventSink,
    Executor,
    JobRecord,
    JobStatus,
    NodeCall,
    NodeKind,
    PythonModelFunction,
    Store,
)
from engine.run.children import ChildGate
from engine.run.instances import Instance
from engine.run.job import job_document, job_document_json, write_job_document
from engine.run.persistence import Recorder, restore
from engine.run.runner import Runner
from engine.run.scheduler import Clock, Scheduler, utc_now
from engine.run.spooled import SpooledDocument
from engine.subworkflows import SubWorkflows, decide_here

CHECKPOINT_EVERY = 5.0  # seconds, at least, between two documents written while a job runs
SPOOL_NODES = 20_000  # a job with more nodes has its document encoded into a file


def new_job_id() -> str:
    """`job_` plus 25 random url-safe characters, like Scenario's ids."""
    return "job_" + secrets.token_urlsafe(19)[:25].replace("-", "x").replace("_", "y")


@dataclass
class JobRun:
    """A job the engine is running or has run: its scheduler, runner and document."""

    workflow: Workflow
    plan: Plan
    scheduler: Scheduler
    runner: Runner
    created_at: str
    parent_job_id: str | None = None
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    # a large job's spooled document is deflated as it is encoded, for a store that keeps
    # large documents deflated (see engine/deflated.py)
    deflate_spool: bool = False
    # set while an advance of the job goes on: another one joins it instead of running beside it
    advancing: anyio.Event | None = field(default=None, repr=False)
    _document: dict[str, Any] | None = field(default=None, repr=False)
    _document_key: tuple[int, JobStatus] | None = field(default=None, repr=False)
    # (state key, encoding, when it was made, seconds it took)
    _document_json: tuple[tuple[int, JobStatus], bytes, float, float] | None = field(
        default=None, repr=False
    )
    # a large job's latest encoding, in a file (see `stored_form`)
    # (state key, file, seconds its encoding took)
    _spooled: tuple[tuple[int, JobStatus], SpooledDocument, float] | None = field(
        default=None, repr=False
    )

    @property
    def job_id(self) -> str:
        return self.scheduler.job_id

    @property
    def status(self) -> JobStatus:
        return self.scheduler.status

    @property
    def waiting(self) -> list[Instance | ChildGate]:
        """Gates waiting for a decision: the job's own, then those inside the sub-workflows
        its `workflow` nodes wait on, named by path (`sub/approve`)."""
        return self.scheduler.waiting_at()

    def document_json(self, *, may_lag: bool = False) -> bytes:
        """The document as UTF-8 JSON, encoded node by node (the node dicts of a large job
        never exist all at once) and once per change: checkpoints and the CLI share it.

        With `may_lag` (readers that poll), a running job's last encoding is reused while it
        is younger than twice what making it took: polling a 100,000-node job (half a second
        to encode) then spends at most a third of the event loop on encoding it, and a small
        job's answer is at most a few milliseconds old. A job that is not running is exact."""
        key = self._key()
        cached = self._document_json
        if cached is not None and (
            cached[0] == key
            or (may_lag and self.runner.active and monotonic() - cached[2] < 2 * cached[3])
        ):
            return cached[1]
        self._document_json = None  # let the old encoding go before making the new one
        spooled = self._spooled
        if spooled is not None and spooled[0] == key:
            # a large job's checkpoint encoded this state into a file already: what it took to
            # encode is what `may_lag` weighs, not this read
            encoded, took = spooled[1].read(), spooled[2]
        else:
            started = monotonic()
            encoded = self.encode()
            took = monotonic() - started
        self._document_json = (key, encoded, monotonic(), took)
        return encoded

    def encode(self) -> bytes:
        """The document as UTF-8 JSON, encoded now and not kept (see `document_json`)."""
        with quiet_gc():
            return job_document_json(
                self.scheduler, created_at=self.created_at, extra_metadata=self.extra_metadata
            )

    @property
    def spools(self) -> bool:
        """Whether the job is large enough to have its document encoded into a file."""
        return len(self.scheduler.instances) > SPOOL_NODES

    def spool(self) -> SpooledDocument | bytes:
        """The document encoded now into a temporary file, not kept (the caller closes it);
        in memory when no temporary file can be written (a full disk, an unwritable
        `TMPDIR`): the file spares memory, it is not worth failing the job for."""
        try:
            with quiet_gc():
                return SpooledDocument(
                    partial(
                        write_job_document,
                        self.scheduler,
                        created_at=self.created_at,
                        extra_metadata=self.extra_metadata,
                    ),
                    deflate=self.deflate_spool,
                )
        except OSError:
            return self.encode()

    def stored_form(self) -> bytes | SpooledDocument:
        """The document as checkpoints and the CLI's output take it, once per change: in
        memory, or, for a job of more than SPOOL_NODES nodes, in a temporary file read a piece
        at a time, so that a large job's encoding (480 MB for a million nodes) is never held
        whole beside its state. The file is kept until the job changes (or is forgotten)."""
        if not self.spools:
            return self.document_json()
        key = self._key()
        spooled = self._spooled
        if spooled is not None:
            if spooled[0] == key:
                return spooled[1]
            # not closed: a checkpoint may still be reading it; it goes with its last holder
            self._spooled = None
        if self._document_json is not None and self._document_json[0] == key:
            return self._document_json[1]  # encoded in memory already (a reader asked)
        started = monotonic()
        document = self.spool()
        finished = monotonic()
        if isinstance(document, bytes):
            self._document_json = (key, document, finished, finished - started)
        else:
            self._spooled = (key, document, finished - started)
        return document

    def let_go(self) -> None:
        """Drop the encodings kept for readers (a large job's temporary file goes with its
        last holder): the job is no longer kept, and may be held in reference cycles a while."""
        self._document_json = None
        self._spooled = None
        self._document = None

    def _key(self) -> tuple[int, JobStatus]:
        return (self.scheduler.transition_count, self.scheduler.status)

    @property
    def updated_at(self) -> str:
        return self.scheduler.updated_at or self.created_at

    def document(self) -> dict[str, Any]:
        """The job as Scenario's API shows it (no envelope). Built again only when something
        changed since the last call; treat it as read-only."""
        key = self._key()
        if self._document is None or self._document_key != key:
            with quiet_gc():
                self._document = job_document(
                    self.scheduler, created_at=self.created_at, extra_metadata=self.extra_metadata
                )
            self._document_key = key
        return self._document


class Engine:
    """Runs Scenario workflows locally.

    Model nodes go to `executors` (a router); by default a dry-run executor serves every model
    node, and functions given in `python_models` serve their `modelId` first.
    """

    def __init__(
        self,
        *,
        executors: ExecutorRouter | None = None,
        python_models: Mapping[str, PythonModelFunction] | None = None,
        dry_run: DryRunExecutor | None = None,
        policy: CallPolicy | None = None,
        kinds: Mapping[str, NodeKind] | None = None,
        workflows: Mapping[str, Workflow] | None = None,
        sinks: Iterable[EventSink] = (),
        keep_going: bool = False,
        seed: int = 0,
        clock: Clock = utc_now,
        job_ids: Callable[[], str] = new_job_id,
        store: Store | None = None,
        run_options: Mapping[str, Any] | None = None,
        workflow_source: Callable[[str], Workflow | None] | None = None,
        checkpoint_every: float | None = CHECKPOINT_EVERY,
        limits: Limits | None = None,
    ) -> None:
        if kinds is None:
            from nodes import default_registry

            kinds = default_registry()
        self.kinds = dict(kinds)
        self.policy = policy or CallPolicy()
        self.seed = seed
        default = dry_run or DryRunExecutor(seed=seed)
        router = executors or ExecutorRouter(default=default)
        if python_models:
            python = PythonExecutor(python_models)
            router = ExecutorRouter(
                routes=[Route(python, model_id=m) for m in python.functions] + router.routes,
                default=router.default,
            )
        self.router = router
        self.workflows: dict[str, Workflow] = dict(workflows or {})
        self.workflow_source = workflow_source
        self.sinks: list[EventSink] = list(sinks)
        self.keep_going = keep_going
        self.clock = clock
        self.job_ids = job_ids
        self.store = store
        self.run_options = dict(run_options or {})
        self.checkpoint_every = checkpoint_every
        self.limits = limits or Limits()
        self.jobs: dict[str, JobRun] = {}
        self.subworkflows = SubWorkflows(self)
        # one limit on executor calls for all the jobs of this engine, per event loop
        self._limiters: RunVar[anyio.CapacityLimiter] = RunVar(f"flowgraph-limiter-{id(self)}")

    # ----- documents ----------------------------------------------------------------------------

    def load(self, document: Workflow | Mapping[str, Any] | str | Path) -> Workflow:
        """A Workflow from a model, a parsed document (any accepted form) or a file path."""
        if isinstance(document, Workflow):
            return document
        if isinstance(document, str | Path):
            return read_document(document)
        return load_workflow(dict(document))

    def compile(self, document: Workflow | Mapping[str, Any] | str | Path) -> Plan:
        """Validate and compile; raises ValidationError listing every problem."""
        return compile_flow(self.load(document), self.kinds, self.limits)

    def limiter(self) -> anyio.CapacityLimiter:
        """The engine-wide limit on concurrent executor calls (one per event loop)."""
        try:
            return self._limiters.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self.policy.concurrency)
            self._limiters.set(limiter)
            return limiter

    def workflow(self, workflow_id: str) -> Workflow | None:
        """A workflow of the registry, else of `workflow_source`, else of the store."""
        found = self.workflows.get(workflow_id)
        if found is None and self.workflow_source is not None:
            found = self.workflow_source(workflow_id)
        if found is None and self.store is not None:
            stored = self.store.get_workflow(workflow_id)
            if stored is not None:
                found = load_workflow(stored)
        return found

    def subscribe(self, sink: EventSink) -> None:
        """Receive every transition of every job from now on."""
        self.sinks.append(sink)

    # ----- running ------------------------------------------------------------------------------

    def prepare(
        self,
        document: Workflow | Mapping[str, Any] | str | Path,
        inputs: Mapping[str, Any] | None = None,
        *,
        keep_going: bool | None = None,
        job_id: str | None = None,
        parent: JobRun | None = None,
        lineage: Sequence[str] = (),
    ) -> JobRun:
        """Compile, check the run inputs and create the job (queued; nothing runs yet)."""
        if job_id is not None and job_id in self.jobs:
            raise FlowgraphError(f"job `{job_id}` exists already; give a new job id")
        workflow = self.load(document)
        plan = compile_flow(workflow, self.kinds, self.limits)
        values = validate_run_inputs(workflow, inputs or {})
        keep_going = self.keep_going if keep_going is None else keep_going
        scheduler = Scheduler(
            plan,
            job_id=job_id or self.job_ids(),
            inputs=values,
            keep_going=keep_going,
            clock=self.clock,
            limits=self.limits,
        )
        job = self._job(
            workflow,
            plan,
            scheduler,
            lineage=lineage,
            parent_job_id=parent.job_id if parent else None,
        )
        if self.store is not None:
            created = scheduler.status_history[0][0]
            self.store.create_job(
                JobRecord(
                    job_id=job.job_id,
                    workflow_id=workflow.id,
                    workflow=workflow.to_wire(),
                    inputs=values,
                    options={
                        **self.run_options,
                        "keepGoing": keep_going,
                        "seed": self.seed,
                        # the workflows above a sub-workflow's job, to refuse cycles on resume
                        **({"lineage": list(lineage)} if lineage else {}),
                    },
                    status=scheduler.status.value,
                    created_at=created,
                    updated_at=created,
                    document=job.document(),
                    parent_job_id=job.parent_job_id,
                )
            )
        return job

    def _job(
        self,
        workflow: Workflow,
        plan: Plan,
        scheduler: Scheduler,
        *,
        lineage: Sequence[str],
        parent_job_id: str | None,
        restored: bool = False,
        created_at: str | None = None,
    ) -> JobRun:
        chain = (*lineage, workflow.id or "<root>")

        async def run_child(instance: Instance, call: NodeCall, workflow_id: str) -> CallResult:
            return await self.subworkflows.run(job, instance, call, workflow_id, chain)

        runner = Runner(
            scheduler,
            router=self.router,
            policy=self.policy,
            sinks=self.sinks,
            child_runner=run_child,
            seed=self.seed,
            recorder=Recorder(scheduler, self.store, restored=restored),
            limiter=self.limiter,
        )
        job = JobRun(
            workflow=workflow,
            plan=plan,
            scheduler=scheduler,
            runner=runner,
            created_at=created_at or scheduler.status_history[0][0],
            parent_job_id=parent_job_id,
            # a store written against the protocol before it had the attribute: False
            deflate_spool=getattr(self.store, "deflates_documents", False),
        )
        if parent_job_id is not None:
            job.extra_metadata["workflowJobId"] = parent_job_id
        self.jobs[scheduler.job_id] = job
        return job

    async def run(
        self,
        document: Workflow | Mapping[str, Any] | str | Path,
        inputs: Mapping[str, Any] | None = None,
        *,
        keep_going: bool | None = None,
        job_id: str | None = None,
    ) -> JobRun:
        """Run a workflow to its end or to the first gates that wait."""
        job = self.prepare(document, inputs, keep_going=keep_going, job_id=job_id)
        await self.advance(job)
        return job

    async def advance(self, job: JobRun) -> None:
        """Run a prepared or restored job as far as it can go, then checkpoint it (and, with
        a store, now and then while it runs).

        A sub-workflow's job that its parent waits on is carried on by the parent: the
        parent's `workflow` node starts again and runs it, then the parent goes on."""
        parent = self.parent_to_carry(job)
        if parent is not None:
            await self.advance(parent)
        else:
            await self.advance_itself(job)

    def parent_to_carry(self, job: JobRun) -> JobRun | None:
        """The parent job to carry on in place of `job`, a sub-workflow's job that it waits on
        (see `SubWorkflows.parent_to_carry`); None for any other job."""
        return self.subworkflows.parent_to_carry(job)

    async def advance_itself(self, job: JobRun) -> None:
        """`advance` for the job itself, never through a parent (what a workflow node's call
        does with its child). Children it leaves waiting are canceled when it ends otherwise
        than in success: nothing would decide for them.

        One advance of a job at a time: while one goes on (a parent's workflow node running
        its child, a decision arriving as the run ends), another call hands it what changed
        and waits for it to end; it runs again for what came while its run was ending."""
        if job.advancing is not None:
            if job.runner.active and not job.runner.closing:
                try:
                    job.runner.pump()  # a run in progress picks up what changed at once
                except Exception as error:  # ends this job, as a run's own failure does
                    job.runner.abort(internal_message(first_cause(error)))
            await job.advancing.wait()
            return
        job.advancing = done = anyio.Event()
        try:
            with quiet_gc():
                while await self._run_once(job) and job.scheduler.is_active():
                    pass
            if job.scheduler.finished and job.status is not JobStatus.SUCCESS:
                reason = f"its parent job `{job.job_id}` ended {job.status}"
                await self.subworkflows.end_children(job, reason)
        finally:
            job.advancing = None
            done.set()

    async def _run_once(self, job: JobRun) -> bool:
        """One run of the job and its checkpoint; False when the job was aborted."""
        if job.runner.active:  # never: `advance_itself` runs one advance of a job at a time
            raise RuntimeError(f"job `{job.job_id}` is running already")
        try:
            if self.store is None or not self.checkpoint_every or not self.store.shared:
                await job.runner.run()
            else:
                async with anyio.create_task_group() as group:
                    group.start_soon(self._checkpoints_while_running, job)
                    await job.runner.run()
                    group.cancel_scope.cancel()
            await self.checkpoint(job)
        except Exception as error:  # whatever breaks inside a job ends that job, not us
            await self._abort(job, error)
            return False
        return True

    async def _abort(self, job: JobRun, error: BaseException) -> None:
        """End `job` as failed with what went wrong, and record that. Raises StoreError when
        the store cannot record it (the job is failed in memory all the same)."""
        cause = first_cause(error)
        message = str(cause) if isinstance(cause, FlowgraphError) else internal_message(cause)
        job.runner.abort(message)
        try:
            await job.runner.flush()
            await self.checkpoint(job)
        except Exception as again:
            cause = first_cause(again)
            if isinstance(cause, StoreError):
                raise cause from None
            raise StoreError(
                f"job `{job.job_id}` failed ({message}) and the store could not record it: "
                f"{internal_message(cause)}"
            ) from None

    async def _checkpoints_while_running(self, job: JobRun) -> None:
        """Write the document while the job runs, so that readers of the store (another
        server, `flowgraph jobs`) see it progress: at most every `checkpoint_every` seconds
        and, as encoding a 100,000-node job takes half a second, at most a tenth of the time
        (the cost per node is measured as it goes; 5 µs to begin with)."""
        assert self.store is not None and self.checkpoint_every
        every = self.checkpoint_every
        # the state written last is unknown: the run may have changed the job before this
        # task first ran (calls a batch executor answers at once), so the first turn writes
        store, per_node, last = self.store, 5e-6, monotonic()
        written: tuple[int, JobStatus] | None = None
        while True:
            await anyio.sleep(min(every, 0.5))
            nodes = len(job.scheduler.instances)  # a loop's expansion can multiply them
            if monotonic() - last < max(every, 10 * per_node * nodes) or job._key() == written:
                continue
            key, started = job._key(), monotonic()
            # not kept: a running job would hold tens of megabytes
            encoded = job.spool() if job.spools else job.encode()
            per_node = (monotonic() - started) / max(nodes, 1)
            try:
                await self._write_checkpoint(store, job, encoded)
            finally:
                if isinstance(encoded, SpooledDocument):
                    encoded.close()
            del encoded
            written, last = key, monotonic()

    def record_now(self, job: JobRun) -> None:
        """Write what the job's log has pending, then its status and whole document, now and
        in this thread: for a job changed outside any run (one that never started, a child
        mended after a stop). No-op without a store."""
        if self.store is None:
            return
        recorder = job.runner.recorder
        recorder.write(*recorder.take())
        self.store.checkpoint(
            job.job_id,
            status=job.status.value,
            updated_at=job.updated_at,
            document_json=job.stored_form(),
        )

    async def checkpoint(self, job: JobRun) -> None:
        """Store the job's status and its whole document."""
        if self.store is not None:
            await self._write_checkpoint(self.store, job, job.stored_form())

    @staticmethod
    async def _write_checkpoint(
        store: Store, job: JobRun, encoded: bytes | SpooledDocument
    ) -> None:
        write = partial(
            store.checkpoint,
            job.job_id,
            status=job.status.value,
            updated_at=job.updated_at,
            document_json=encoded,
        )
        await anyio.to_thread.run_sync(write)

    async def resume(self, job_id: str) -> JobRun:
        """Continue a job as far as it can go: after decisions, a stop or a crash.

        From the store, finished nodes keep their results and are not run again; nodes whose
        executor call was cut short run again with the same attempt (and idempotency key).
        """
        job = self.get(job_id)
        await self.advance(job)
        return job

    async def decide(self, job_id: str, node_id: str, decision: Any) -> JobRun:
        """Approve (`"approve"`), reject (`"reject"`) or select (`{"select": [i, ...]}`) at a
        waiting gate, then continue the job. Raises DecisionError, changing nothing, when the
        decision cannot apply."""
        job = self.get(job_id)
        self.decide_now(job, node_id, decision)
        await self.advance(job)
        return job

    def decide_now(
        self, job: JobRun, node_id: str, decision: Any, *, gate_type: str | None = None
    ) -> list[str]:
        """Apply and record a decision without running anything yet; returns the gates decided.

        `node_id` names a gate of the job (its id, a template id or a clone-id prefix), or a
        gate inside the sub-workflow of a `workflow` node by path (`sub/approve`,
        `sub#1/approve`, `sub/inner/approve`): the decision is the child job's, and the
        workflow nodes waiting on it start again when the job carries on. With `gate_type`,
        only gates of that type take it (a route for approvals refuses a selection). Raises
        DecisionError, changing nothing, when the decision cannot apply.
        """
        decided = self.subworkflows.decide(job, node_id, decision, gate_type)
        if decided is None:
            decided = decide_here(job, node_id, decision, gate_type)
        return decided

    async def record_decisions(self, job: JobRun) -> None:
        """Write the decisions `decide_now` applied to `job` and the sub-workflow jobs below
        it, now: an answer saying a decision was taken must not be lost with the process."""
        for each in [job, *self.descendants(job)]:
            if each.runner.recorder.pending:
                await each.runner.flush()

    def descendants(self, job: JobRun) -> list[JobRun]:
        """The live sub-workflow jobs below `job`, its children first."""
        below = [j for j in self.jobs.values() if j.parent_job_id == job.job_id]
        return [*below, *(d for child in below for d in self.descendants(child))]

    async def cancel(
        self, job_id: str, *, reason: str = "job canceled", carry_parent: bool = True
    ) -> JobRun:
        """Cancel a job: calls in flight are cancelled, unfinished nodes skipped (with
        `reason`), and the sub-workflow jobs it was running or waiting on canceled too. A
        parent waiting on it carries on (its workflow node fails: the child ended canceled),
        unless `carry_parent` is False (the caller starts it: see `parent_to_carry`)."""
        job = self.get(job_id)
        job.runner.cancel(reason)
        # the children before the job's own end is written: a stop between the two leaves no
        # child waiting under an ended parent
        await self.subworkflows.end_children(job, f"its parent job `{job_id}` was canceled")
        if not job.runner.active:
            await job.runner.flush()
            await self.checkpoint(job)
        parent = self.parent_to_carry(job) if carry_parent else None
        if parent is not None:
            await self.advance(parent)
        return job

    def forget(self, job_id: str) -> None:
        """Drop a job from memory (the store keeps it), with the child jobs it left behind
        that are not running; a later `get` rebuilds them."""
        forgotten = self.jobs.pop(job_id, None)
        if forgotten is not None:
            forgotten.let_go()
        for child in [j for j in self.jobs.values() if j.parent_job_id == job_id]:
            if not child.runner.active:
                self.forget(child.job_id)

    def get(self, job_id: str) -> JobRun:
        """A job of this engine, or one rebuilt from the store."""
        live = self.jobs.get(job_id)
        if live is not None:
            return live
        record = self.store.get_job(job_id) if self.store is not None else None
        if record is None:
            suffix = "" if self.store is not None else " (this engine has no store)"
            raise UnknownJobError(f"no job `{job_id}`{suffix}")
        return self._restore(record)

    def document_json(self, job_id: str, *, may_lag: bool = False) -> bytes:
        """`document(job_id)` as UTF-8 JSON: encoded node by node when live (see
        `JobRun.document_json` for `may_lag`), else the stored bytes as they are (nothing
        parsed: a 100,000-node job is tens of megabytes)."""
        live = self.jobs.get(job_id)
        if live is not None:
            return live.document_json(may_lag=may_lag)
        found = self.store.document_json(job_id) if self.store is not None else None
        if found is None:
            raise UnknownJobError(f"no job `{job_id}`")
        return found

    def document(self, job_id: str) -> dict[str, Any]:
        """The job's document: live, or the latest one the store holds."""
        live = self.jobs.get(job_id)
        if live is not None:
            return live.document()
        record = self.store.get_job(job_id) if self.store is not None else None
        if record is None or record.document is None:
            raise UnknownJobError(f"no job `{job_id}`")
        return record.document

    def replay(
        self, record: JobRecord
    ) -> tuple[Workflow, Scheduler, list[Instance], dict[str, str]]:
        """The job `record` (of this engine's store) rebuilt from its log, its workflow, the
        nodes its run had started without a result, and the remote jobs their calls had
        started, by node id; nothing is run, kept or written."""
        assert self.store is not None
        workflow = load_workflow(record.workflow)
        plan = compile_flow(workflow, self.kinds, self.limits)
        history = None
        if record.document is not None:
            history = [
                (h["date"], JobStatus(h["status"]))
                for h in record.document.get("statusHistory", [])
            ]
        scheduler, live, remote = restore(
            plan,
            job_id=record.job_id,
            inputs=record.inputs,
            keep_going=bool(record.options.get("keepGoing", False)),
            clock=self.clock,
            outcomes=self.store.outcomes(record.job_id),
            history=history,
            updated_at=record.updated_at,
            limits=self.limits,
        )
        return workflow, scheduler, live, remote

    def _restore(self, record: JobRecord) -> JobRun:
        workflow, scheduler, live, remote = self.replay(record)
        plan = scheduler.plan
        live = self.subworkflows.repark(scheduler, live)  # before the recorder: nothing new
        job = self._job(
            workflow,
            plan,
            scheduler,
            lineage=tuple(record.options.get("lineage", ())),
            parent_job_id=record.parent_job_id,
            restored=True,
            created_at=record.created_at,
        )
        job.runner.pending_start = live
        job.runner.remote_jobs = remote
        self.subworkflows.mend(job)
        return job


def executor_route(
    executor: Executor, *, node_type: str | None = None, model_id: str | None = None
) -> Route:
    """A routing rule: nodes of `node_type` / `model_id` (glob patterns) go to `executor`."""
    return Route(executor, node_type=node_type, model_id=model_id)
