"""The async runner: drives a Scheduler with anyio.

Control nodes run inline (they are cheap and synchronous); model-like and workflow nodes go to
a fixed pool of workers, one per unit of the concurrency limit, so a 100,000-node fan-out does
not pay for 100,000 tasks.
"""

from __future__ import annotations

import base64
import os
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from time import monotonic
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from engine.compile.budget import kind_failed, runs_apart, start_apart
from engine.compile.compiler import TemplateNode
from engine.errors import TransientExecutorError
from engine.executors import CallPolicy, ExecutorRouter, call_executor
from engine.executors.calls import executor_outcome
from engine.gc_tuning import collect_if_due, quiet_gc
from engine.protocols import (
    BatchExecutor,
    CallResult,
    ChildWaits,
    Completed,
    Delegate,
    EventSink,
    ExecutorResult,
    Failed,
    NodeCall,
    NodeStatus,
    Outcome,
    OutcomeRecord,
    RunChild,
    Transition,
)
from engine.run.children import child_job_id
from engine.run.instances import Instance
from engine.run.persistence import Recorder
from engine.run.scheduler import Scheduler

ChildRunner = Callable[[Instance, NodeCall, str], Awaitable[CallResult]]


def _kind_start(template: TemplateNode, call: NodeCall) -> Outcome:
    """What a node's kind answers when it starts; its own error fails the node, not the job."""
    try:
        return template.kind.start(call, template.expressions)
    except Exception as error:
        return kind_failed(template.type, error)


def _inputs(names: tuple[str, ...], values: tuple[Any, ...] | None) -> dict[str, Any]:
    """A call's inputs by name: one value per name (`strict` would double the cost of this,
    per call; one input, the usual loop body's, is a dict made at once)."""
    if values is None:
        return {}
    if len(names) == 1:
        return {names[0]: values[0]}
    return dict(zip(names, values))  # noqa: B905


def _own_limiter(total: int) -> Callable[[], anyio.CapacityLimiter]:
    holder: list[anyio.CapacityLimiter] = []

    def get() -> anyio.CapacityLimiter:
        if not holder:
            holder.append(anyio.CapacityLimiter(total))
        return holder[0]

    return get


_ID_CHARS = 24  # 18 random bytes in url-safe base64, no padding
_ID_BATCH = 4096
_ID_ALPHABET = bytes.maketrans(b"-_", b"xy")
_ids_lock = threading.Lock()
_id_pool: list[str] = []  # ids drawn and not handed out yet


def new_node_job_id() -> str:
    """`job_` and 24 random url-safe characters (18 bytes of the OS's random source).

    Drawn 4,096 ids at a time and encoded together (base64 of whole 3-byte groups is the
    concatenation of their encodings): one `os.urandom` per id released the GIL 100,000 times
    in a large run, and each time the store's writer thread could take it for a while.
    """
    while True:
        try:
            return _id_pool.pop()  # atomic: no lock taken per id
        except IndexError:
            with _ids_lock:  # one thread draws; another that found the pool empty waits
                if not _id_pool:
                    raw = os.urandom(_ID_CHARS * 3 // 4 * _ID_BATCH)
                    text = base64.urlsafe_b64encode(raw).translate(_ID_ALPHABET).decode()
                    _id_pool.extend(
                        "job_" + text[i : i + _ID_CHARS] for i in range(0, len(text), _ID_CHARS)
                    )


def _batch_answers(
    batcher: BatchExecutor, calls: list[NodeCall]
) -> list[ExecutorResult | Exception] | None:
    """`batcher.run_batch(calls)`; its own error, or a list of the wrong length, is every
    call's answer: an executor's error fails its nodes, never the engine."""
    try:
        answers = batcher.run_batch(calls)
    except Exception as error:
        return [error] * len(calls)
    if answers is not None and len(answers) != len(calls):
        wrong = RuntimeError(f"run_batch answered {len(answers)} results for {len(calls)} calls")
        return [wrong] * len(calls)
    return answers


class Runner:
    """Runs a scheduler until nothing more can happen without a decision."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        router: ExecutorRouter,
        policy: CallPolicy,
        sinks: Sequence[EventSink] = (),
        child_runner: ChildRunner | None = None,
        seed: int = 0,
        node_job_ids: Callable[[], str] = new_node_job_id,
        recorder: Recorder | None = None,
        flush_interval: float = 0.05,
        limiter: Callable[[], anyio.CapacityLimiter] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.router = router
        self.policy = policy
        # the same list as the engine's, so a sink subscribed later hears this job too
        self.sinks = sinks if isinstance(sinks, list) else list(sinks)
        self.child_runner = child_runner
        self.seed = seed
        self.node_job_ids = node_job_ids
        self.recorder = recorder or Recorder(scheduler, None)
        # executor calls of every job of an engine share one limit; by default, this job's own
        self.limiter = limiter or _own_limiter(policy.concurrency)
        self.flush_interval = flush_interval
        # Outcome records waiting for the store, at most, before the run waits for the write in
        # progress (see `_catch_up`). The store writes in a thread that gets the GIL only
        # between the event loop's slices: a busy run otherwise outpaces it, and the backlog of
        # a 100,000-node fan-out reached 40,000 nodes' records and transitions at once.
        self.backlog = 4096
        self._flush_lock: anyio.Lock | None = None
        self.pending_start: list[Instance] = []  # handed out during a restore, not started yet
        self.remote_jobs: dict[str, str] = {}  # restored: node id -> the remote job of its call
        self._remote_hook = self._remote_started
        # how far the remote jobs of calls in flight have come, by node id (executors that say)
        self.call_progress: dict[str, float] = {}
        self._progress_hook = self.call_progress.__setitem__
        self.active = False
        self._announced = self.recorder.flushed_transitions
        self._group: TaskGroup | None = None
        self._wake = anyio.Event()
        # delegated calls waiting for a worker; a plain deque, so that handing a call over costs
        # no trip through the event loop
        self._queue: deque[tuple[Instance, NodeCall, object]] = deque()
        # Calls started ahead of a free worker, at most. The rest of a large fan-out stays
        # `pending` in the scheduler: no call, outcome record or transition exists for it yet.
        self.queue_ahead = max(64, 4 * policy.concurrency)
        # Nodes started by one `pump` at most: calls a batch executor answers at once finish
        # there, and a large fan-out would otherwise hold the event loop (the store's flushes,
        # other jobs, a cancel) until its last iteration.
        self.start_at_once = 512
        # Seconds of inline expressions a turn of the run may spend: past them, the expression
        # nodes it hands out are evaluated in later turns of the event loop, as many as fit in
        # this many seconds each (`_drain_inline`), so that a fan-out of costly ones (each
        # within what may run inline) does not hold the loop (the server, other jobs) for all
        # of them at once.
        self.inline_slice = 0.02
        self._turn_ends = 0.0
        self._inline_due: deque[tuple[Instance, NodeCall]] = deque()
        self._draining = False
        self._has_work = anyio.Event()
        self._closed = False
        # by node type and model id: the executor serving those calls if it answers batches
        # at once, or None
        self._batchers: dict[tuple[str, str | None], BatchExecutor | None] = {}
        self._template_batchers: dict[str, BatchExecutor | None] = {}  # the same, by template

    @property
    def durable(self) -> bool:
        return self.recorder.store is not None

    async def run(self) -> None:
        """Advance the job as far as it can go: to its end, or to gates that wait.

        With a store, outcomes and transitions are written in batches (one transaction every
        `flush_interval` seconds at most) and sinks hear of a transition only once it is written.
        """
        scheduler = self.scheduler
        if scheduler.finished:
            await self.flush()
            return
        if self.active:
            raise RuntimeError(f"job `{scheduler.job_id}` is running already")
        if scheduler.status.value == "queued":
            scheduler.start()
        self._queue.clear()
        self._closed = False
        self._has_work = anyio.Event()
        self._flush_lock = anyio.Lock()
        self.active = True
        quiet = quiet_gc()
        quiet.__enter__()
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                for _ in range(self.policy.concurrency):
                    group.start_soon(self._worker)
                if self.durable:
                    group.start_soon(self._flusher)
                if self._inline_due:  # left by a run cancelled early
                    self._drain_later(group)
                starting, self.pending_start = self.pending_start, []
                self._turn_ends = monotonic() + self.inline_slice
                self._start_batch(starting)
                self.pump()
                while scheduler.is_active():
                    await self._wake.wait()
                    self._wake = anyio.Event()
                    await self._catch_up()
                    self.pump()
                self._close_queue()
                group.cancel_scope.cancel()
        finally:
            self._group = None
            self.active = False
            self._close_queue()
            if scheduler.finished:
                self._inline_due.clear()  # canceled or aborted: nothing left of them runs
            quiet.__exit__(None, None, None)
            with anyio.CancelScope(shield=True):
                await self.flush()  # even when the run itself is being cancelled
            self._flush_lock = None

    @property
    def closing(self) -> bool:
        """The run is ending (its workers are being cancelled): nothing new starts in it."""
        return self.active and self._closed

    def pump(self) -> None:
        """Start ready nodes: control nodes inline, the rest handed to the workers, until
        `queue_ahead` calls wait for a worker (the others stay ready, `pending`, for later).
        While the run is closing, nothing starts: ready nodes wait for the next run."""
        if self.closing:
            return
        scheduler = self.scheduler
        started = 0
        self._turn_ends = monotonic() + self.inline_slice
        while (room := self.queue_ahead - len(self._queue) - len(self._inline_due)) > 0:
            if started >= self.start_at_once or self._store_behind:
                # more is ready: the run starts it after a turn of the event loop, once the
                # store has caught up
                self._wake.set()
                break
            batch = scheduler.ready(room)
            if not batch:
                break
            started += len(batch)
            self._start_batch(batch)
        if not self.durable:
            self._flush_now()
        if scheduler.finished and self._group is not None:
            self._group.cancel_scope.cancel()
        if not scheduler.is_active():
            self._wake.set()

    def _start_batch(self, batch: list[Instance]) -> None:
        answered_now: dict[int, tuple[BatchExecutor, list[tuple[Instance, NodeCall, Delegate]]]]
        answered_now = {}
        # the batch executor of the template last seen, and its calls: a fan-out's batch is
        # one template's clones, looked up once
        last: TemplateNode | None = None
        calls: list[tuple[Instance, NodeCall, Delegate]] | None = None
        for instance in batch:
            template = instance.template
            call = self._call(instance)
            if template.expressions and self._group is not None:
                if runs_apart(template, call.inputs):
                    self._group.start_soon(self._start_apart, instance, call)  # the budget
                    continue
                if self._inline_due or monotonic() > self._turn_ends:
                    self._inline_due.append((instance, call))
                    self._drain_later(self._group)
                    continue
            outcome = _kind_start(template, call)
            if isinstance(outcome, Delegate):
                if template is not last:
                    last, calls = template, None
                    batcher = self._batch_executor(template)
                    if batcher is not None:
                        calls = answered_now.setdefault(id(batcher), (batcher, []))[1]
                if calls is not None:
                    self._prepare_call(instance, call)
                    call.attempt = instance.attempt + 1  # as `apply` counts it for a call
                    calls.append((instance, call, outcome))
                    continue
            self._started(instance, call, outcome)
        for batcher, answered in answered_now.values():
            self._answer_now(batcher, answered)

    def _prepare_call(self, instance: Instance, call: NodeCall) -> None:
        """What a delegated call carries: the hooks an executor reports through, and the
        remote job a restored call had started."""
        call.on_remote_job = self._remote_hook
        call.on_progress = self._progress_hook
        if self.remote_jobs:
            call.remote_job_id = self.remote_jobs.pop(instance.id, None)

    def _started(self, instance: Instance, call: NodeCall, outcome: Outcome) -> None:
        """Apply what a node's kind answered when it started, and hand a call it delegates
        (or a child job it runs) to the workers."""
        if isinstance(outcome, RunChild):
            instance.job_id = instance.job_id or child_job_id(self.scheduler.job_id, instance.id)
        elif isinstance(outcome, Delegate):
            self._prepare_call(instance, call)
            instance.job_id = instance.job_id or self.node_job_ids()
        self.scheduler.apply(instance, outcome)
        self.recorder.add(instance, outcome)
        if isinstance(outcome, Delegate | RunChild):
            call.attempt = instance.attempt
            self._queue.append((instance, call, outcome))
            self._has_work.set()

    def _batch_executor(self, template: TemplateNode) -> BatchExecutor | None:
        """The executor that serves `template`'s calls if it answers batches at once (looked
        up once per node type and model, not per template: a protocol check costs tens of
        microseconds, and a chain of 10,000 model nodes has 10,000 templates)."""
        try:
            return self._template_batchers[template.id]  # its own id: no key made per call
        except KeyError:
            pass
        key = (template.type, template.node.model_id)
        try:
            batcher = self._batchers[key]
        except KeyError:
            executor = self.router.route(*key)
            batcher = executor if isinstance(executor, BatchExecutor) else None
            self._batchers[key] = batcher
        self._template_batchers[template.id] = batcher
        return batcher

    def _answer_now(
        self, batcher: BatchExecutor, calls: list[tuple[Instance, NodeCall, Delegate]]
    ) -> None:
        """Calls of one batch executor, answered in one step: each node completes or fails at
        once. Calls it cannot answer now, and transient errors (retried with a backoff), go to
        the workers, to be awaited one at a time."""
        scheduler, recorder = self.scheduler, self.recorder
        answers = _batch_answers(batcher, [call for _, call, _ in calls])
        # completed calls in a row, applied together (`answered_all`) before anything else is
        completed: list[tuple[Instance, Completed]] = []
        for position, (instance, call, delegate) in enumerate(calls):
            answer = answers[position] if answers is not None else None
            if scheduler.first_failure is not None and scheduler.halting:  # no call per node
                # fail-fast: a call answered before it in this batch failed; it never started
                scheduler.withdraw(instance)
                continue
            instance.job_id = instance.job_id or self.node_job_ids()
            if answer is None or isinstance(answer, TransientExecutorError):
                self._answer_all(completed)
                scheduler.apply(instance, delegate)
                recorder.add(instance, delegate)
                self._queue.append((instance, call, delegate))
                self._has_work.set()
                continue
            outcome = executor_outcome(batcher, call, answer)
            if type(outcome) is Completed:
                completed.append((instance, outcome))
                continue
            self._answer_all(completed)
            scheduler.answered(instance, outcome)
            recorder.add_answered(instance, outcome)
        self._answer_all(completed)

    def _answer_all(self, completed: list[tuple[Instance, Completed]]) -> None:
        """Apply and record calls completed in one step, in order; then none are left. Should
        applying one fail (a bug of the engine's: the job aborts), the nodes applied before it
        are recorded all the same, as they were when each was recorded once applied."""
        if not completed:
            return
        try:
            self.scheduler.answered_all(completed)
        except BaseException:
            processing = NodeStatus.PROCESSING
            self.recorder.add_completed([p for p in completed if p[0].status is not processing])
            completed.clear()
            raise
        self.recorder.add_completed(completed)
        completed.clear()

    async def _start_apart(self, instance: Instance, call: NodeCall) -> None:
        """Start a node whose expressions can run long in a worker process (see
        engine/compile/budget.py); the job waits for it as for an inline start."""
        outcome = await start_apart(instance.template, call, self.scheduler.limits)
        if instance.status is not NodeStatus.PROCESSING or not instance.handed_out:
            return  # the job was canceled or closed meanwhile
        self._started(instance, call, outcome)
        self.pump()

    def _drain_later(self, group: TaskGroup) -> None:
        """Have the nodes left for later evaluated (see `_drain_inline`), unless that goes on."""
        if not self._draining:
            self._draining = True
            group.start_soon(self._drain_inline)

    async def _drain_inline(self) -> None:
        """Evaluate the expression nodes a turn left for later (see `inline_slice`), in the
        order they were handed out, for at most `inline_slice` seconds a turn of the event
        loop."""
        due = self._inline_due
        try:
            await self._drain(due)
        finally:
            self._draining = False

    async def _drain(self, due: deque[tuple[Instance, NodeCall]]) -> None:
        scheduler = self.scheduler
        while due:
            await anyio.sleep(0)
            await self._catch_up()  # the store's backlog bounds these nodes' records too
            turn_ends = monotonic() + self.inline_slice
            while due:
                instance, call = due.popleft()
                if instance.status is NodeStatus.PROCESSING and instance.handed_out:
                    if scheduler.halting:  # fail fast: as a worker does with its calls
                        scheduler.withdraw(instance)
                        continue
                    self._started(instance, call, _kind_start(instance.template, call))
                if monotonic() > turn_ends:
                    break
            self.pump()

    async def flush(self) -> None:
        """Write what is pending (in a worker thread), then tell the sinks. One flush at a time
        while the job runs, so that batches reach the store in the order they were taken."""
        if self._flush_lock is None:
            await self._flush()
            return
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        await self._write(*self.recorder.take())

    async def _write(
        self, outcomes: list[OutcomeRecord], transitions: list[Transition], end: int
    ) -> None:
        """Write a batch taken from the recorder, then tell the sinks."""
        if self.durable and (outcomes or transitions):
            # Shielded: once taken, a batch must reach the store. A cancel arriving while the
            # call waits for a free worker thread would otherwise drop it.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.recorder.write, outcomes, transitions, end)
        else:
            self.recorder.write(outcomes, transitions, end)
        self.announce(end)

    @property
    def _store_behind(self) -> bool:
        """At least `backlog` outcome records wait for the store."""
        return self.durable and len(self.recorder.pending) >= self.backlog

    async def _catch_up(self) -> None:
        """When the store is behind, wait for the write in progress, hand what is pending to
        the next write, and go on while that one is made: one write in flight at most, and at
        most `backlog` records piling up behind it (waiting for both writes, as a flush here
        would, kept the run idle for a write's time at every catch-up)."""
        if self._store_behind:
            assert self._group is not None  # only while the job runs
            await self._group.start(self._write_ahead)

    async def _write_ahead(self, *, task_status: TaskStatus[None]) -> None:
        """Take what is pending once the write in progress is done (the one that started it
        goes on from there), then write it."""
        assert self._flush_lock is not None
        async with self._flush_lock:
            if len(self.recorder.pending) < self.backlog:  # another write took them meanwhile
                task_status.started()
                return
            taken = self.recorder.take()
            task_status.started()
            await self._write(*taken)

    def _flush_now(self) -> None:
        outcomes, transitions, end = self.recorder.take()
        self.recorder.write(outcomes, transitions, end)
        self.announce(end)

    async def _flusher(self) -> None:
        while True:
            await anyio.sleep(self.flush_interval)
            await self.flush()
            collect_if_due()

    def announce(self, end: int | None = None) -> None:
        """Hand the written transitions not yet announced to every sink, in order."""
        scheduler = self.scheduler
        end = scheduler.transition_count if end is None else end
        if self.sinks:
            for transition in scheduler.transitions_between(self._announced, end):
                for sink in self.sinks:
                    sink(transition)
        self._announced = max(self._announced, end)
        # written and announced: nothing needs them in memory any more
        scheduler.drop_transitions(min(self._announced, self.recorder.flushed_transitions))

    def _call(self, instance: Instance) -> NodeCall:
        template = instance.template
        # positional, in NodeCall's field order: one call per node, and keyword arguments
        # tripled what making it cost
        return NodeCall(
            self.scheduler.job_id,  # job_id
            instance.id,  # node_id
            template.id,  # template_id
            template.type,  # node_type
            template.node.model_id,  # model_id
            _inputs(template.input_names, instance.resolved),  # inputs
            template.node,  # node
            instance.scope.index,  # iteration_index
            max(instance.attempt, 1),  # attempt
            0,  # retry
            self.seed,  # seed
        )

    def _remote_started(self, node_id: str, remote_job_id: str) -> None:
        """An executor started a remote job for the node's call: it becomes the node's job
        id (as Scenario's flow nodes name their inference jobs), and is recorded."""
        instance = self.scheduler.instances.get(node_id)
        if instance is None or instance.status is not NodeStatus.PROCESSING:
            return
        instance.job_id = remote_job_id
        self.recorder.add_record(OutcomeRecord(node_id, "remote", {"jobId": remote_job_id}))

    def _close_queue(self) -> None:
        self._closed = True
        self._has_work.set()

    async def _next_call(self) -> tuple[Instance, NodeCall, object] | None:
        while not self._queue:
            if self._closed:
                return None
            if self._has_work.is_set():
                self._has_work = anyio.Event()
            await self._has_work.wait()
        return self._queue.popleft()

    async def _worker(self) -> None:
        scheduler = self.scheduler
        handled = 0
        borrower = object()
        limiter = self.limiter()  # looked up once: a lookup per call costs a run-variable read
        while (item := await self._next_call()) is not None:
            instance, call, outcome = item
            if instance.status is not NodeStatus.PROCESSING or scheduler.halting:
                scheduler.withdraw(instance)
                self.pump()
                continue
            scheduler.call_started(instance)
            result: CallResult
            if isinstance(outcome, RunChild):
                result = await self._run_child(instance, call, outcome.workflow_id)
            else:
                result = await self._run_model(call, limiter, borrower)
            instance.attempt = call.attempt
            # a child's gates are the child's to record: a restored job asks the child again
            if scheduler.finish_call(instance, result) and not isinstance(result, ChildWaits):
                self.recorder.add(instance, result)
            self.pump()
            await self._catch_up()
            handled += 1
            if handled % 32 == 0:
                await (
                    anyio.lowlevel.checkpoint()
                )  # executors that never wait must not starve others

    async def _run_model(
        self, call: NodeCall, limiter: anyio.CapacityLimiter, borrower: object
    ) -> Completed | Failed:
        """The call, holding a token of the engine-wide `limiter` on behalf of `borrower` (its
        worker: cheaper than anyio looking up the current task twice per call)."""
        executor = self.router.route(call.node_type, call.model_id)
        if executor is None:
            model = f" with modelId `{call.model_id}`" if call.model_id else ""
            return Failed(
                f"no executor serves `{call.node_type}` nodes{model}; register one or add a route"
            )
        try:
            limiter.acquire_on_behalf_of_nowait(borrower)
        except anyio.WouldBlock:
            await limiter.acquire_on_behalf_of(borrower)
        try:
            return await call_executor(executor, call, self.policy)
        finally:
            limiter.release_on_behalf_of(borrower)
            if self.call_progress:
                self.call_progress.pop(call.node_id, None)

    async def _run_child(self, instance: Instance, call: NodeCall, workflow_id: str) -> CallResult:
        if self.child_runner is None:
            return Failed(
                f"sub-workflow `{workflow_id}` cannot run: the engine has no workflow "
                "registry (give Engine(workflows=...) or `--workflows DIR`)"
            )
        return await self.child_runner(instance, call, workflow_id)

    def abort(self, message: str) -> None:
        """End the job as failed with `message` (see `Scheduler.abort`); recorded, so that a
        job rebuilt from the store ends the same way."""
        if self.scheduler.finished:
            return
        self.scheduler.abort(message)
        self.recorder.add_record(OutcomeRecord("", "abort", {"message": message}))
        self._wake.set()  # a run in progress ends
        if self._group is not None:
            self._group.cancel_scope.cancel()

    def cancel(self, reason: str = "job canceled") -> None:
        """Cancel the job and every executor call in flight."""
        self.scheduler.cancel(reason)
        self.recorder.add_record(OutcomeRecord("", "cancel", {"reason": reason}))
        self.pump()
