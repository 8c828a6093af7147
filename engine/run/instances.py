"""Node instances and loop scopes: the runtime graph the scheduler drives.

A template is a compiled flow node; an instance is one run of it: the node itself at top level,
or a clone `T S#i` created by iteration `i` of the loop instance with suffix `S`. Links say where
each input, `dependsOn` entry and branch source of an instance points in that runtime graph.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from engine.compile.compiler import CompiledInput, Plan, TemplateNode
from engine.protocols import NodeStatus

BAD_STATUSES = frozenset({NodeStatus.SKIPPED, NodeStatus.FAILURE, NodeStatus.REJECTED})

# link modes
WORKFLOW = 0  # a run input
INSTANCE = 1  # another instance's outputs
ITEM = 2  # the current item (or index) of an enclosing loop
COLLECTION = 3  # the clones of a template below a loop instance, collected in iteration order

Link = tuple[int, Any, Any]  # (mode, instance-or-scope, template id or input name)

# An input's link to a loop's item holds no scope: `(ITEM, None, levels)` names the scope that
# many levels up from the instance's own (0: its own). Such links, the links of run inputs and
# those to instances outside the loop are the same for every clone of a template in one loop,
# and so is a tuple of them: the clones share one (see `linking.link_instance`) instead of a copy
# each.
ITEM_UP = tuple((ITEM, None, levels) for levels in range(64))

# What an instance has before anything is set: shared, immutable (a large fan-out creates
# hundreds of thousands of instances, most of which never get dependents or order links).
NO_OUTPUTS: Mapping[str, Any] = MappingProxyType({})

LOOP_TEMPLATE = "loop template of"  # the start of a loop template's skip reason


def is_loop_template(node: Mapping[str, Any]) -> bool:
    """Whether a node of a job document is a loop template (skipped by construction: its
    clones run), not a node skipped by a branch, a failure or a rejection."""
    reason = node.get("statusReason")
    return isinstance(reason, str) and reason.startswith(LOOP_TEMPLATE)


class Scope:
    """One loop iteration (or the top level, with no loop): where clone ids get their suffix."""

    __slots__ = ("parent", "loop", "index", "item", "depth")

    def __init__(
        self, parent: Scope | None, loop: FullInstance | None, index: int | None, item: Any
    ) -> None:
        self.parent = parent
        self.loop = loop
        self.index = index
        self.item = item
        self.depth: int = 0 if parent is None or loop is None else parent.depth + 1

    @property
    def suffix(self) -> str:
        """What the ids of the scope's clones add to their template's id (`#2`, `#2#0`; none at
        top level). Made when asked: a large fan-out's iterations would each keep one."""
        loop = self.loop
        if loop is None:
            return ""
        return f"{loop.scope.suffix}#{self.index}"


class Instance:
    """One node of the job's flow, with its runtime state (plain slots: this is the hot path).

    What only some nodes have (a loop's iterations, `dependsOn` links, branch sources, rows)
    is not among its slots but in those of `FullInstance`, which such nodes are: here it reads
    as its empty default. The plain model nodes of a large fan-out are most of its instances.
    """

    __slots__ = (
        "id",
        "template",
        "scope",
        "status",
        "reason",
        "resolved",
        "outputs",
        "assets",
        "details",
        "items",
        "input_links",
        "conditional_links",
        "blocked",
        "dependents",
        "job_id",
        "attempt",
        "is_template_copy",
        "cause",
        "handed_out",
    )

    # FullInstance's slots; read-only defaults on every other instance
    order_links: tuple[Link, ...] = ()
    # inputs_array rows: per input, per row, per sub-input, where its ref points (or None)
    row_links: tuple[tuple[tuple[Link | None, ...], ...], ...] = ()
    branch_links: tuple[Instance, ...] = ()
    iterations: list[Scope] | None = None
    children_left = 0
    failed_child: Instance | None = None

    def __init__(
        self,
        template: TemplateNode,
        scope: Scope,
        template_copy: bool = False,
        suffix: str | None = None,
    ) -> None:
        # positional parameters: a fan-out makes hundreds of thousands (a keyword argument
        # costs a call about 70 ns here)
        # `suffix`: the scope's, made once for the members of a loop iteration by its caller
        self.id = template.id + (scope.suffix if suffix is None else suffix)
        self.template = template
        self.scope = scope
        self.status = NodeStatus.PENDING
        self.reason: str | None = None
        # the inputs' values, in the template's input order (None until they resolve): a tuple
        # rather than a dict by name, a third of its size in a fan-out of hundreds of thousands
        self.resolved: tuple[Any, ...] | None = None
        self.outputs: Mapping[str, Any] = NO_OUTPUTS
        self.assets: Sequence[Any] = ()
        self.details: dict[str, Any] | None = None
        self.items: list[Any] | None = None
        # filled once by the scheduler when the instance is wired
        self.input_links: tuple[Link | None, ...] = ()
        self.conditional_links: tuple[tuple[Link, ...], ...] = ()
        self.blocked = 0
        self.dependents: list[Instance] | tuple[()] = ()
        self.job_id: str | None = None
        self.attempt = 0
        self.is_template_copy = template_copy
        self.cause: dict[str, Any] | None = None  # decisive values of a skip, failure or reject
        self.handed_out = False  # by `ready()`, its outcome not applied yet

    @staticmethod
    def of(template: TemplateNode) -> type[Instance]:
        """The class of the template's instances: FullInstance for a loop, and for a node with
        `dependsOn`, branch sources or rows; Instance for any other."""
        if (
            template.type == "for-each"
            or template.depends_on
            or template.branch_sources
            or any(compiled.rows for compiled in template.inputs)
        ):
            return FullInstance
        return Instance

    @property
    def values(self) -> dict[str, Any] | None:
        """The inputs' values by name (None until they resolve)."""
        if self.resolved is None:
            return None
        return dict(zip(self.template.input_names, self.resolved, strict=True))

    @property
    def iteration_index(self) -> int | None:
        return self.scope.index

    @property
    def loop_node_id(self) -> str | None:
        return self.scope.loop.id if self.scope.loop is not None else None

    def __repr__(self) -> str:
        return f"<Instance {self.id} {self.status.value}>"


class FullInstance(Instance):
    """An instance with what only some have (see `Instance`): set by the scheduler."""

    __slots__ = (
        "order_links",
        "row_links",
        "branch_links",
        "iterations",
        "children_left",
        "failed_child",
    )

    def __init__(
        self,
        template: TemplateNode,
        scope: Scope,
        template_copy: bool = False,
        suffix: str | None = None,
    ) -> None:
        super().__init__(template, scope, template_copy, suffix)
        self.order_links = ()
        self.row_links = ()
        self.branch_links = ()
        self.iterations = None
        self.children_left = 0
        self.failed_child = None


def named_by(key: str, instances: Mapping[str, Instance]) -> list[Instance]:
    """The nodes of `instances` (by id) a decision's key names: the node itself, else every
    clone of a template id, or every clone below a clone-id prefix (`gate#1` for `gate#1#0`).
    The converse of `decision_keys`."""
    exact = instances.get(key)
    if exact is not None and not exact.is_template_copy:
        return [exact]
    prefix = key + "#"
    return [
        i
        for i in instances.values()
        if not i.is_template_copy and (i.template.id == key or i.id.startswith(prefix))
    ]


def decision_keys(instance: Instance) -> list[str]:
    """The keys a decision may name `instance` by, most specific first: its id, its clone-id
    prefixes, longest first (`gate#1` for `gate#1#0`), then its template id."""
    parts = instance.id.split("#")
    keys = [instance.id, *("#".join(parts[:length]) for length in range(len(parts) - 1, 0, -1))]
    keys.append(instance.template.id)
    return list(dict.fromkeys(keys))


def locate(plan: Plan, instances: dict[str, Instance], template_id: str, scope: Scope) -> Link:
    """Where a reference to `template_id`, made from inside `scope`, points."""
    enclosing: Scope | None = scope
    while enclosing is not None and enclosing.loop is not None:
        if enclosing.loop.template.id == template_id:
            return (ITEM, enclosing, None)
        enclosing = enclosing.parent
    target = plan.nodes[template_id]
    loops = target.loops
    common = scope
    while common.depth > len(loops) or (
        common.loop is not None and loops[common.depth - 1] != common.loop.template.id
    ):
        assert common.parent is not None
        common = common.parent
    if len(loops) == common.depth:
        return (INSTANCE, instances[template_id + common.suffix], None)
    return (COLLECTION, instances[loops[common.depth] + common.suffix], template_id)


def link_status(link: Link) -> NodeStatus | None:
    """The status a link waits on (None for run inputs and loop items)."""
    if link[0] in (INSTANCE, COLLECTION):
        return link[1].status  # type: ignore[no-any-return]
    return None


def link_id(link: Link) -> str:
    if link[0] in (INSTANCE, COLLECTION):
        return link[1].id  # type: ignore[no-any-return]
    return str(link[1].loop.id)


def output_value(outputs: Mapping[str, Any], name: str | None) -> Any:
    """A ref without `name` takes `output`; `all` takes the whole mapping."""
    if name is None:
        return outputs.get("output")
    if name == "all":
        return dict(outputs)
    return outputs.get(name)


def link_value(
    plan: Plan, instances: dict[str, Instance], link: Link, name: str | None, *, flatten: bool
) -> Any:
    """The value a link yields for a ref with `name`."""
    mode, target, extra = link
    if mode == ITEM and target is None:  # see ITEM_UP: the scope comes from the instance
        raise ValueError("a relative item link is resolved with `item_value`")
    if mode == INSTANCE:
        value = output_value(target.outputs, name)
        if flatten and target.template.type == "for-each" and name in (None, "output"):
            value = flatten_once(value)
        return value
    if mode == ITEM:
        return item_value(target, name)
    values = collect(plan, instances, target, extra, name)
    return flatten_once(values) if flatten else values


def item_value(scope: Scope, name: str | None) -> Any:
    """What a ref to the loop of `scope` yields, from inside it, for `name`."""
    if name in (None, "output", "item"):
        return scope.item
    if name == "index":
        return scope.index
    if name == "all":
        return {"item": scope.item, "index": scope.index}
    assert scope.loop is not None
    return scope.loop.outputs.get(name)


def collect(
    plan: Plan, instances: dict[str, Instance], loop: Instance, template_id: str, name: str | None
) -> list[Any]:
    """Values of the clones of `template_id` below `loop`, in iteration order (outer-major),
    skipped clones left out."""
    return list(collected(plan, instances, loop, template_id, name))


def collected(
    plan: Plan, instances: dict[str, Instance], loop: Instance, template_id: str, name: str | None
) -> Iterator[Any]:
    """`collect`'s values, one at a time. The iterations of one loop are all as deep: each
    clone's id is the same prefix and its index (its scope's `suffix`, made once)."""
    iterations = loop.iterations
    if not iterations:
        return
    loops, depth = plan.nodes[template_id].loops, iterations[0].depth
    next_id = loops[depth] if len(loops) > depth else template_id
    prefix = f"{next_id}{loop.scope.suffix}#"
    if next_id != template_id:
        for scope in iterations:
            yield from collected(
                plan, instances, instances[prefix + str(scope.index)], template_id, name
            )
        return
    success = NodeStatus.SUCCESS
    for scope in iterations:
        clone = instances[prefix + str(scope.index)]
        if clone.status is success:
            yield output_value(clone.outputs, name)


_MAKING_LOCKS = threading.Lock()  # a loop output's lock is made once


class Collected:
    """A finished for-each's `output` (its one sink's values, see `collect`), for the job
    document to write (see `job.node_document`): iterating it reads the clones again. `size`
    is the loop's iterations (as many values at most, unless the sink is in a nested loop)."""

    __slots__ = ("_outputs", "size")

    def __init__(self, outputs: LoopOutputs, size: int) -> None:
        self._outputs = outputs
        self.size = size

    def __iter__(self) -> Iterator[Any]:
        return self._outputs.iter_output()


class LoopOutputs(Mapping[str, Any]):
    """A finished for-each's outputs: `items` and `count`, as its expansion set them, and
    `output`, what its sinks' clones gave, collected in iteration order when first read and
    kept from then on (every reader shares that one value, as they would a dict's).

    Until something reads it, it is not kept: in a fan-out nothing reads (its clones are the
    job's outputs), and a list per clone kept only to be written into the job document once
    would be about 100 bytes a clone; the document writes it from the clones instead
    (`streamed_output`)."""

    __slots__ = ("_plan", "_instances", "_loop", "_base", "_output", "_read", "_lock")

    def __init__(
        self, plan: Plan, instances: dict[str, Instance], loop: Instance, base: Mapping[str, Any]
    ) -> None:
        self._plan, self._instances, self._loop = plan, instances, loop
        self._base = {key: value for key, value in base.items() if key != "output"}
        self._output: Any = None
        self._read = False
        self._lock: threading.RLock | None = None  # made when first needed (see `_value`)

    def _collect(self) -> Any:
        sinks = self._loop.template.sinks
        values = {s: collect(self._plan, self._instances, self._loop, s, None) for s in sinks}
        return values[sinks[0]] if len(sinks) == 1 else values

    def _value(self) -> Any:
        if not self._read:
            # a view built in a worker thread may read it as the run does: one collection,
            # under this output's own lock (a server's other jobs do not wait for it);
            # reentrant, as an outer loop's collection reads its inner loops'
            lock = self._lock
            if lock is None:
                with _MAKING_LOCKS:
                    lock = self._lock = self._lock or threading.RLock()
            with lock:
                if not self._read:
                    self._output, self._read = self._collect(), True
        return self._output

    def iter_output(self) -> Iterator[Any]:
        """The output's values (of its one sink) without keeping them."""
        if self._read:
            return iter(self._output)
        (sink,) = self._loop.template.sinks
        return collected(self._plan, self._instances, self._loop, sink, None)

    def streamed_output(self) -> Any:
        """The output as the job document writes it: the kept value once read; else, for a
        loop with one sink (the usual case), a `Collected`, read from the clones and not
        kept; else its values."""
        if self._read or len(self._loop.template.sinks) != 1:
            return self._value()
        return Collected(self, len(self._loop.iterations or ()))

    def without_output(self) -> dict[str, Any]:
        return dict(self._base)

    def __getitem__(self, key: str) -> Any:
        if key == "output":
            return self._value()
        return self._base[key]

    def get(self, key: str, default: Any = None) -> Any:
        if key == "output":
            return self._value()
        return self._base.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key == "output" or key in self._base

    def __iter__(self) -> Iterator[str]:
        yield from self._base
        yield "output"

    def __len__(self) -> int:
        return len(self._base) + 1

    def __repr__(self) -> str:
        return f"LoopOutputs({dict(self)!r})"


def flatten_once(value: Any) -> Any:
    """For an `*_array` consumer: list values flattened one level, scalars appended."""
    if not isinstance(value, list):
        return value
    flat: list[Any] = []
    for element in value:
        if isinstance(element, list):
            flat.extend(element)
        else:
            flat.append(element)
    return flat


def coerce(compiled: CompiledInput, value: Any) -> Any:
    """A list offered to a single `file`/`model` input yields its first item; a scalar offered
    to an `*_array` input is wrapped in a list."""
    if value is None:
        return None
    if compiled.is_single_asset and isinstance(value, list):
        return value[0] if value else None
    if compiled.is_array and not isinstance(value, list):
        return [value]
    return value


def json_text(value: Any) -> str:
    """A value as Scenario compares and shows it: JSON scalars stringified, strings as they are."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, separators=(",", ":"))
