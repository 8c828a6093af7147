"""The scheduler: a state machine over node instances, with no I/O and no event loop.

The caller drives it, like the stdlib's `graphlib.TopologicalSorter`:

    scheduler = Scheduler(plan, job_id=..., inputs=...)
    scheduler.start()
    while scheduler.is_active():
        for instance in scheduler.ready():        # now `processing`
            scheduler.apply(instance, outcome)     # Completed, Failed, Expand, Wait, ...
        ...                                        # delegated calls: scheduler.finish_call()

Every status change is appended to `transitions`, an outbox: the runner writes them to the
store, tells its sinks, then drops them (`drop_transitions`); `transition_count` keeps counting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from engine.compile.compiler import CompiledInput, Plan, TemplateNode
from engine.errors import DecisionError
from engine.limits import Limits
from engine.protocols import (
    TERMINAL_JOB,
    TERMINAL_NODE_STATUSES,
    AssetOutputs,
    CallResult,
    ChildRejected,
    ChildWaits,
    Completed,
    Delegate,
    Expand,
    Failed,
    JobStatus,
    NodeStatus,
    Outcome,
    Reject,
    RunChild,
    Transition,
    Wait,
)
from engine.run.children import ChildGate, waiting_reason
from engine.run.instances import (
    BAD_STATUSES,
    ITEM,
    LOOP_TEMPLATE,
    WORKFLOW,
    FullInstance,
    Instance,
    Link,
    LoopOutputs,
    Scope,
    coerce,
    item_value,
    link_value,
    named_by,
)
from engine.run.linking import link_instance
from engine.run.skips import matched, skip_cause

Clock = Callable[[], str]
# a named tuple made from its fields' tuple: its own constructor is a Python function, called
# twice per node (a transition each time its status changes)
_new_transition = tuple.__new__


_last_stamp: list[Any] = [-1, ""]


def utc_now() -> str:
    """ISO time with milliseconds, as Scenario writes it (`2023-02-03T11:19:41.579Z`).

    Formatted once per millisecond: a busy run records many transitions in the same one.
    """
    millis = time.time_ns() // 1_000_000
    if millis != _last_stamp[0]:
        moment = datetime.fromtimestamp(millis / 1000, UTC)
        _last_stamp[0] = millis
        _last_stamp[1] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    text: str = _last_stamp[1]
    return text


class Scheduler:
    """Runs one job's flow as a state machine. Misuse raises `RuntimeError` naming the node."""

    def __init__(
        self,
        plan: Plan,
        *,
        job_id: str,
        inputs: Mapping[str, Any],
        keep_going: bool = False,
        clock: Clock = utc_now,
        limits: Limits | None = None,
    ) -> None:
        self.plan = plan
        self.limits = limits or Limits()
        self.job_id = job_id
        self.inputs = dict(inputs)
        self.keep_going = keep_going
        self.clock = clock
        self.instances: dict[str, Instance] = {}
        # input links that name no instance, by value: one tuple for every clone that has them
        self._shared_links: dict[tuple[Link | None, ...], tuple[Link | None, ...]] = {}
        self._classes: dict[str, type[Instance]] = {}  # by template id: see `Instance.of`
        self.transitions: list[Transition] = []  # the outbox; see drop_transitions()
        self.transitions_dropped = 0
        self._dropped_at: str | None = None  # time of the last dropped transition
        self.status = JobStatus.QUEUED
        self.status_history: list[tuple[str, JobStatus]] = [(clock(), JobStatus.QUEUED)]
        self.error: str | None = None
        self.first_failure: Instance | None = None
        self.cancel_reason: str | None = None
        self.in_flight: dict[str, Instance] = {}  # delegated: queued for a worker or running
        self.running: set[str] = set()  # the part of in_flight a worker has started
        self.waiting: dict[str, Instance] = {}
        # workflow nodes parked while their child job waits at gates (see engine/run/children)
        self.parked: dict[str, ChildWaits] = {}
        self.rejected_at: str | None = None  # the gate whose reject canceled the job
        self.terminal_count = 0
        self._ready: deque[Instance] = deque()
        # rebuilding the job from its log (see `restore`): transitions are counted, not kept
        self.replaying = False
        self._started = 0  # instances handed out by ready() whose outcome is not applied yet
        self._closing = False  # while the job is being closed, terminal states do not propagate
        top = Scope(None, None, None, None)
        created = [self._create(plan.nodes[node_id], top) for node_id in plan.top_level]
        for template in plan.nodes.values():
            if template.loops:
                copy = self._create(template, top, template_copy=True)
                self._set(
                    copy,
                    NodeStatus.SKIPPED,
                    f"{LOOP_TEMPLATE} `{template.owner}`",
                    {"cause": "template", "loop": template.owner},
                )
        self._wire(created)

    # ----- public API --------------------------------------------------------------------------

    @property
    def transition_count(self) -> int:
        """Transitions recorded so far, dropped ones included."""
        return self.transitions_dropped + len(self.transitions)

    @property
    def updated_at(self) -> str | None:
        """Time of the latest transition (None before the first)."""
        return self.transitions[-1].at if self.transitions else self._dropped_at

    def transitions_between(self, start: int, end: int) -> list[Transition]:
        """The transitions from position `start` to `end` (counted from the first ever); the
        dropped ones are gone, so `start` must not be before `transitions_dropped`."""
        dropped = self.transitions_dropped
        return self.transitions[start - dropped : end - dropped]

    def drop_transitions(self, upto: int) -> None:
        """Forget the transitions before position `upto` (counted from the first ever): they
        have been written and announced. A large job would otherwise hold every one."""
        count = upto - self.transitions_dropped
        if count > 0:
            self._dropped_at = self.transitions[count - 1].at
            del self.transitions[:count]
            self.transitions_dropped = upto

    def replayed(self, updated_at: str | None) -> None:
        """A replay of the job's log has ended: record transitions again. The last one the log
        has was made at `updated_at`."""
        self.replaying = False
        self.drop_transitions(self.transition_count)  # the templates' own, made before it
        if updated_at is not None:
            self._dropped_at = updated_at

    def start(self) -> None:
        """Move the job to `in-progress`."""
        if self.status is not JobStatus.QUEUED:
            raise RuntimeError(f"job `{self.job_id}` was already started ({self.status.value})")
        self._job_status(JobStatus.IN_PROGRESS)
        self._settle_job()

    def ready(self, limit: int | None = None) -> list[Instance]:
        """Instances whose inputs resolved (at most `limit`, first resolved first), now
        `processing`; the caller must `apply` each. The others stay `pending` until asked for.
        A failure stops new hand-outs, except in a replay (the run handed out a batch before
        it failed, and the log has those nodes' outcomes)."""
        if self.status is not JobStatus.IN_PROGRESS or (self.halting and not self.replaying):
            return []
        queued = self._ready
        if limit is None or limit >= len(queued):
            batch = list(queued)
            queued.clear()
        else:
            batch = [queued.popleft() for _ in range(limit)]
        if not batch:
            return batch
        self._started += len(batch)
        at = self.clock()  # a batch is handed out at one time
        for instance in batch:
            instance.handed_out = True
            self._set(instance, NodeStatus.PROCESSING, None, None, at)
        return batch

    def apply(self, instance: Instance, outcome: Outcome | CallResult) -> None:
        """Record what a started instance's node kind decided."""
        if instance.status is not NodeStatus.PROCESSING:
            raise RuntimeError(f"node `{instance.id}` is {instance.status.value}, not processing")
        if instance.handed_out:  # `_take_back`, made here: every node's outcome comes this way
            instance.handed_out = False
            self._started -= 1
        kind = type(outcome)
        if kind is Delegate or kind is RunChild:
            instance.attempt += 1
            self.in_flight[instance.id] = instance
        elif isinstance(outcome, Completed):
            self._succeed(instance, outcome)
        elif isinstance(outcome, Failed):
            self._fail(instance, outcome.message)
        elif isinstance(outcome, Expand):
            refused = self._over_limits(instance, len(outcome.items))
            if refused is None:
                self._expand(instance, outcome.items)
            else:
                self._fail(instance, refused, {"cause": "limit", "message": refused})
        elif isinstance(outcome, Wait):
            instance.items = outcome.items
            self.waiting[instance.id] = instance
            self._note(instance, "waiting for a decision")
        elif isinstance(outcome, ChildWaits):
            self.parked[instance.id] = outcome
            instance.reason = waiting_reason(outcome.gates)
            self._note(instance, instance.reason)
        elif isinstance(outcome, ChildRejected):
            self._reject(
                instance,
                outcome.gate,
                f"rejected by decision at `{outcome.gate}`",
                {"cause": "decision", "decision": "reject", "gate": outcome.gate},
            )
        else:
            raise TypeError(f"node `{instance.id}`: unknown outcome {outcome!r}")
        self._settle_job()

    def finish_call(self, instance: Instance, outcome: CallResult) -> bool:
        """Record the end of a delegated call (for a workflow node, possibly that its child
        job waits at gates); False (and ignored) if the job was canceled meanwhile."""
        if self.in_flight.pop(instance.id, None) is None:
            if instance.status.terminal:
                return False
            raise RuntimeError(f"node `{instance.id}` has no call in flight")
        self.running.discard(instance.id)
        self.apply(instance, outcome)
        return True

    def answered(self, instance: Instance, outcome: Completed | Failed) -> None:
        """Record a delegated call started and answered in one step (by a batch executor):
        what `apply(Delegate)`, `call_started` and `finish_call` record for it, without the
        call ever being in flight."""
        instance.attempt += 1  # as `apply(Delegate)` counts a call
        self.apply(instance, outcome)

    def answered_all(self, answers: list[tuple[Instance, Completed]]) -> None:
        """`answered` for calls a batch executor completed together, in order: what `apply`
        records for each, without its dispatch per node, and the job settled once after the
        last (before it, the batch's other calls keep the job from settling). Every node must
        be processing: checked for all before any is applied."""
        processing = NodeStatus.PROCESSING
        for instance, _ in answers:
            if instance.status is not processing:
                raise RuntimeError(
                    f"node `{instance.id}` is {instance.status.value}, not processing"
                )
        for instance, outcome in answers:
            instance.attempt += 1  # as `apply(Delegate)` counts a call
            if instance.handed_out:  # as `apply` takes it back
                instance.handed_out = False
                self._started -= 1
            self._succeed(instance, outcome)
        self._settle_job()

    def call_started(self, instance: Instance) -> None:
        """A worker began the delegated call (a cancel now fails it rather than skipping it)."""
        if instance.id not in self.in_flight:
            raise RuntimeError(f"node `{instance.id}` has no call in flight")
        self.running.add(instance.id)

    def withdraw(self, instance: Instance) -> None:
        """Take back a delegated call that never started (the job is halting or was canceled);
        the node stays unfinished and is skipped when the job closes."""
        self.in_flight.pop(instance.id, None)
        self.running.discard(instance.id)
        self._take_back(instance)
        self._settle_job()

    def _take_back(self, instance: Instance) -> None:
        if instance.handed_out:
            instance.handed_out = False
            self._started -= 1

    @property
    def halting(self) -> bool:
        """A failure stops new work (fail-fast, unless `keep_going`)."""
        return self.first_failure is not None and not self.keep_going

    def is_active(self) -> bool:
        """Whether anything can still happen without a decision: ready work or calls in flight."""
        if self.status in TERMINAL_JOB:
            return False
        return (
            bool(self.in_flight) or bool(self._started) or (bool(self._ready) and not self.halting)
        )

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_JOB

    @property
    def progress(self) -> float:
        if self.status is JobStatus.SUCCESS:
            return 1.0
        return self.terminal_count / len(self.instances) if self.instances else 1.0

    def waiting_gates(self, node_id: str) -> list[Instance]:
        """Waiting gates a decision keyed `node_id` applies to (see `named_by`)."""
        return named_by(node_id, self.waiting)

    def unpark(self, instance: Instance) -> None:
        """Start a parked workflow node again (a decision reached its child job): its call
        carries the child on and reports how it ended, or where it waits now."""
        if self.parked.pop(instance.id, None) is None:
            raise RuntimeError(f"node `{instance.id}` is not waiting on a child job")
        instance.reason = None
        self._ready.append(instance)

    def waiting_at(self) -> list[Instance | ChildGate]:
        """Every gate the job waits for: its own, then those of the child jobs its parked
        workflow nodes wait on (named by path, `sub/approve`)."""
        return [
            *self.waiting.values(),
            *(gate for waits in self.parked.values() for gate in waits.gates),
        ]

    def still_waits(self, gate: Instance | ChildGate) -> bool:
        """Whether a gate listed by `waiting_at` still waits here (a child's gate no longer
        does once its workflow node is started again)."""
        if isinstance(gate, ChildGate):
            return gate.holder in self.parked
        return gate.id in self.waiting

    def decide(self, node_id: str, decision: Any) -> list[str]:
        """Apply a decision to the gates `node_id` names; returns the ids decided.

        Raises DecisionError (and changes nothing) for a finished job, a node that is not
        waiting, or a decision the gate refuses.
        """
        if self.finished:
            raise DecisionError(
                f"job `{self.job_id}` is finished ({self.status.value}); decisions no longer apply"
            )
        gates = self.waiting_gates(node_id)
        if not gates:
            raise DecisionError(self.not_waiting_message(node_id))
        results = [
            (g, g.template.kind.decide(g.template.node, g.items, decision))  # type: ignore[attr-defined]
            for g in gates
        ]
        for gate, result in results:
            if gate.status is not NodeStatus.PROCESSING:
                continue  # an earlier reject in this batch canceled the job
            del self.waiting[gate.id]
            if isinstance(result, Reject):
                self._reject(
                    gate,
                    gate.id,
                    "rejected by decision",
                    {"cause": "decision", "decision": "reject"},
                )
            else:
                self._succeed(gate, result)
        self._settle_job()
        return [g.id for g, _ in results]

    def _reject(self, instance: Instance, gate: str, reason: str, details: dict[str, Any]) -> None:
        """`instance` ends `rejected` (a gate, or a workflow node whose child's gate `gate`
        was rejected) and the job is canceled."""
        self._closing = True
        self._set(instance, NodeStatus.REJECTED, reason, details)
        self.rejected_at = gate
        self.cancel(f"gate `{gate}` rejected", {"cause": "rejected", "gate": gate})

    def cancel(self, reason: str = "job canceled", details: dict[str, Any] | None = None) -> None:
        """Cancel the job: calls in flight fail ("canceled"), everything else unfinished is
        skipped with `reason`; finished nodes keep their results."""
        if self.finished:
            raise DecisionError(
                f"job `{self.job_id}` is finished ({self.status.value}); it cannot be canceled"
            )
        self.cancel_reason = reason
        self._closing = True
        for instance in list(self.in_flight.values()):
            if instance.id in self.running:
                self._set(instance, NodeStatus.FAILURE, "canceled", {"cause": "canceled"})
        self.in_flight.clear()
        self.running.clear()
        self._close(reason, details or {"cause": "canceled"})
        self._job_status(JobStatus.CANCELED)

    def abort(self, message: str) -> None:
        """End the job as failed for a reason outside the nodes' own rules (an error of the
        engine, a limit, the store refusing a write): calls in flight fail, everything else
        unfinished is skipped, and `message` is the job's error. A finished job is left as is."""
        if self.finished:
            return
        self.error = message
        self._closing = True
        details = {"cause": "aborted", "message": message}
        for instance in list(self.in_flight.values()):
            if instance.id in self.running:
                self._set(instance, NodeStatus.FAILURE, message, details)
        self.in_flight.clear()
        self.running.clear()
        self._close(f"job failed: {message}", details)
        self._job_status(JobStatus.FAILURE)

    # ----- building the runtime graph ---------------------------------------------------------

    def _create(
        self,
        template: TemplateNode,
        scope: Scope,
        template_copy: bool = False,
        suffix: str | None = None,
    ) -> Instance:
        instance = self._class_of(template)(template, scope, template_copy, suffix)
        if instance.id in self.instances:
            raise RuntimeError(f"node `{instance.id}` already exists")
        self.instances[instance.id] = instance
        return instance

    def _class_of(self, template: TemplateNode) -> type[Instance]:
        kind = self._classes.get(template.id)
        if kind is None:
            kind = self._classes[template.id] = Instance.of(template)
        return kind

    def _wire(self, created: list[Instance]) -> None:
        # A plain instance whose links name no instance and no conditional (its inputs read
        # run inputs, literals and its loops' items) waits on nothing, and its links are the
        # same for every clone of its template created here: linked once, then shared.
        unlinked: dict[str, tuple[Any, Any]] = {}
        may_skip: list[bool] = []
        for instance in created:
            links = unlinked.get(instance.template.id)
            if links is not None:
                instance.input_links, instance.conditional_links = links
                may_skip.append(False)
                continue
            skippable = link_instance(self.plan, self.instances, self._shared_links, instance)
            may_skip.append(skippable)
            if not skippable and type(instance) is Instance:
                unlinked[instance.template.id] = (instance.input_links, instance.conditional_links)
        for instance, skippable in zip(created, may_skip, strict=True):
            if instance.blocked == 0:
                self._settle(instance, skippable)

    def _over_limits(self, loop: Instance, iterations: int) -> str | None:
        """Why `loop` may not expand into `iterations` iterations, or None."""
        limits = self.limits
        what = f"for-each `{loop.id}`"
        if iterations > limits.max_iterations:
            return limits.exceeded("max_iterations", iterations, what)
        nodes = len(self.instances) + iterations * len(loop.template.descendants)
        if nodes > limits.max_nodes:
            return limits.exceeded("max_nodes", nodes, f"{what} ({iterations:,} iterations)")
        return None

    def _expand(self, loop: Instance, items: list[Any]) -> None:
        template = loop.template
        loop.outputs = {"items": items, "count": len(items)}
        loop.details = {"iterations": len(items)}
        if not template.descendants:  # nothing to clone (a plugged-in kind may expand any node)
            self._finish_loop(loop)
            return
        assert isinstance(loop, FullInstance)  # a node with a body is a for-each: see Instance.of
        loop.iterations = []
        created: list[Instance] = []
        members = [self.plan.nodes[member_id] for member_id in template.descendants]
        # each member with whether the loop owns it (else it is an inner loop's template) and
        # the class of its instances
        owned = [
            (member, member.owner == template.id, self._class_of(member)) for member in members
        ]
        outer, prefix = loop.scope, loop.scope.suffix
        iterations, instances = loop.iterations, self.instances
        for index, item in enumerate(items):
            if type(item) is int and item == index:
                index = item  # a `count` loop's item is its index: one int kept, not two
            scope = Scope(outer, loop, index, item)
            iterations.append(scope)
            suffix = f"{prefix}#{index}"  # the scope's: made once for its members
            for member, own, kind in owned:
                if own:  # `_create`, made here: a clone each
                    clone = kind(member, scope, False, suffix)
                    if clone.id in instances:
                        raise RuntimeError(f"node `{clone.id}` already exists")
                    instances[clone.id] = clone
                    created.append(clone)
                else:
                    copy = self._create(member, scope, True, suffix)
                    owner = f"{member.owner}{suffix}"
                    self._set(
                        copy,
                        NodeStatus.SKIPPED,
                        f"{LOOP_TEMPLATE} `{owner}`",
                        {"cause": "template", "loop": owner},
                    )
        loop.children_left = len(created)
        if not created:
            self._finish_loop(loop)
            return
        self._wire(created)

    # ----- transitions -------------------------------------------------------------------------

    def _set(
        self,
        instance: Instance,
        status: NodeStatus,
        reason: str | None,
        details: dict[str, Any] | None = None,
        at: str | None = None,
    ) -> None:
        previous = instance.status
        instance.status = status
        instance.reason = reason
        if status in BAD_STATUSES:
            instance.cause = details
        if self.replaying:  # as `_log` does, made here: every node makes two, the run's most
            self.transitions_dropped += 1
        else:
            self.transitions.append(
                _new_transition(
                    Transition,
                    (
                        self.job_id,
                        instance.id,
                        instance.template.id,
                        instance.scope.index,
                        previous,
                        status,
                        reason,
                        at or self.clock(),
                        details,
                    ),
                )
            )
        if status in TERMINAL_NODE_STATUSES:
            self.terminal_count += 1
            self._terminal(instance)

    def _note(self, instance: Instance, reason: str) -> None:
        self._log(instance, instance.status, instance.status, reason, None)

    def _log(
        self,
        instance: Instance | None,
        previous: str,
        status: str,
        reason: str | None,
        details: dict[str, Any] | None,
        at: str | None = None,
    ) -> None:
        """Append a transition of `instance` (None: of the job) to the outbox, made now or
        `at`; while a log is replayed (the store has its transitions), only count it."""
        if self.replaying:
            self.transitions_dropped += 1
            return
        self.transitions.append(
            Transition(
                self.job_id,
                instance.id if instance is not None else None,
                instance.template.id if instance is not None else None,
                instance.scope.index if instance is not None else None,
                previous,  # a StrEnum member is its own text: no `.value` lookup on this path
                status,
                reason,
                at or self.clock(),
                details,
            )
        )

    def _terminal(self, instance: Instance) -> None:
        if self._closing or instance.is_template_copy:
            return
        for dependent in instance.dependents:
            dependent.blocked -= 1
            if dependent.blocked == 0 and dependent.status is NodeStatus.PENDING:
                self._settle(dependent)
        loop = instance.scope.loop
        if loop is not None:
            if instance.status is NodeStatus.FAILURE and loop.failed_child is None:
                loop.failed_child = instance
            loop.children_left -= 1
            if loop.children_left == 0 and loop.status is NodeStatus.PROCESSING:
                self._finish_loop(loop)

    def _succeed(self, instance: Instance, outcome: Completed) -> None:
        instance.outputs = outcome.outputs
        if outcome.assets:
            instance.assets = outcome.assets
            if type(outcome.outputs) is not AssetOutputs and "output" not in outcome.outputs:
                instance.outputs = {
                    **outcome.outputs,
                    "output": [a.asset_id for a in outcome.assets],
                }
        instance.details = outcome.details
        self._set(instance, NodeStatus.SUCCESS, None, outcome.details)

    def _fail(
        self, instance: Instance, message: str, details: dict[str, Any] | None = None
    ) -> None:
        self.in_flight.pop(instance.id, None)
        self.running.discard(instance.id)
        self.waiting.pop(instance.id, None)
        if self.first_failure is None:
            self.first_failure = instance
            self.error = f"node `{instance.id}`: {message}"
        self._set(
            instance, NodeStatus.FAILURE, message, details or {"cause": "error", "message": message}
        )

    def _finish_loop(self, loop: Instance) -> None:
        if loop.failed_child is not None:
            child = loop.failed_child
            self._fail(
                loop,
                f"iteration {child.scope.index} failed at `{child.id}`",
                {"cause": "iteration", "node": child.id, "iteration": child.scope.index},
            )
            return
        loop.outputs = LoopOutputs(self.plan, self.instances, loop, loop.outputs)
        self._set(loop, NodeStatus.SUCCESS, None, loop.details)

    def _settle(self, instance: Instance, may_skip: bool = True) -> None:
        """Every dependency is terminal: skip the instance with a reason, or resolve its inputs
        and queue it (`may_skip`: whether a skip rule has anything to read, see
        `link_instance`)."""
        cause = skip_cause(instance) if may_skip else None
        if cause is not None:
            self._set(instance, NodeStatus.SKIPPED, cause[0], cause[1])
            return
        inputs = instance.template.inputs
        if len(inputs) == 1:  # one input (a loop's model node reading its item): no comprehension
            instance.resolved = (
                self._resolved(
                    instance, inputs[0], instance.input_links[0], instance.conditional_links[0]
                ),
            )
        else:
            instance.resolved = tuple(
                [
                    self._resolved(instance, compiled, link, conditional)
                    for compiled, link, conditional in zip(
                        inputs, instance.input_links, instance.conditional_links, strict=True
                    )
                ]
            )
        self._ready.append(instance)

    def _resolved(
        self,
        instance: Instance,
        compiled: CompiledInput,
        link: Link | None,
        conditional: tuple[Link, ...] = (),
    ) -> Any:
        """An input's value (or an inputs_array cell's): its ref, else the first matched
        conditional entry, else its rows, else its literal `value`, else its `default`."""
        value = None
        if link is not None:
            mode = link[0]
            if mode == WORKFLOW:
                value = self.inputs.get(compiled.ref_name or "")
            elif mode == ITEM and link[1] is None:  # see ITEM_UP
                scope = instance.scope
                for _ in range(link[2]):
                    assert scope.parent is not None
                    scope = scope.parent
                value = item_value(scope, compiled.ref_name)
            else:
                value = link_value(
                    self.plan, self.instances, link, compiled.ref_name, flatten=compiled.is_array
                )
        elif conditional:
            first = next(e for e in conditional if matched(e, compiled))
            value = link_value(
                self.plan, self.instances, first, compiled.ref_name, flatten=compiled.is_array
            )
        if value is None and compiled.rows:
            row_links = instance.row_links[compiled.position]
            value = [
                {
                    cell.name: self._resolved(instance, cell, cell_link)
                    for cell, cell_link in zip(cells, links, strict=True)
                }
                for cells, links in zip(compiled.rows, row_links, strict=True)
            ]
        if value is None:
            value = compiled.value if compiled.has_value else compiled.default
        return coerce(compiled, value)

    def not_waiting_message(self, node_id: str) -> str:
        """Why a decision keyed `node_id` applies to no gate, with the gates that wait."""
        waiting = ", ".join(f"`{g.id}`" for g in self.waiting_at()) or "none"
        instance = self.instances.get(node_id)
        if instance is None:
            return f"no node `{node_id}` in job `{self.job_id}`; waiting gates: {waiting}"
        if node_id in self.parked:
            return (
                f"node `{node_id}` is a workflow node: it waits for the gates of its "
                f"sub-workflow; name one by its path; waiting gates: {waiting}"
            )
        return (
            f"node `{node_id}` is not waiting for a decision (it is "
            f"{instance.status.value}); waiting gates: {waiting}"
        )

    # ----- ending the job ---------------------------------------------------------------------

    def _settle_job(self) -> None:
        # what is handed out first: nonzero through a batch's answers but the last one's
        if self._started or self.in_flight or self.finished:
            return
        if self.halting:
            assert self.first_failure is not None
            failed = self.first_failure.id
            self._close(f"job failed at `{failed}`", {"cause": "job-failed", "node": failed})
            self._job_status(JobStatus.FAILURE)
        elif not self._ready and not self.waiting and not self.parked:
            unfinished = [i for i in self.instances.values() if not i.status.terminal]
            if unfinished:
                raise RuntimeError(
                    f"job `{self.job_id}` stalled with unfinished nodes: "
                    + ", ".join(f"`{i.id}`" for i in unfinished[:10])
                )
            self._job_status(JobStatus.FAILURE if self.first_failure else JobStatus.SUCCESS)

    def _close(self, reason: str, details: dict[str, Any]) -> None:
        self._closing = True
        self.waiting.clear()
        self.parked.clear()
        self._ready.clear()
        self._started = 0
        for instance in list(self.instances.values()):
            instance.handed_out = False
            if not instance.status.terminal:
                self._set(instance, NodeStatus.SKIPPED, reason, details)

    def _job_status(self, status: JobStatus) -> None:
        at = self.clock()
        self.status_history.append((at, status))
        previous = self.status
        self.status = status
        self._log(None, previous, status, self.error, None, at)
