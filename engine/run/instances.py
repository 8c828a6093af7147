"""Node instances and loop scopes: the runtime graph the scheduler drives.

A template is a compiled flow node; an instance is one run of it: the node itself at top level,
or a clone `T S#i` created by iteration `i` of the loop instance with suffix `S`. Links say where
each input, `dependsOn` entry and branch source of an instance points in that runtime graph.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
        self, parent: Scope | None, loop: Instance | None, index: int | None, item: Any
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
    """One node of the job's flow, with its runtime state (plain slots: this is the hot path)."""

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
        "order_links",
        "row_links",
        "branch_links",
        "blocked",
        "dependents",
        "iterations",
        "children_left",
        "failed_child",
        "job_id",
        "attempt",
        "is_template_copy",
        "cause",
        "handed_out",
    )

    def __init__(
        self, template: TemplateNode, scope: Scope, *, template_copy: bool = False
    ) -> None:
        self.id = template.id + scope.suffix
        self.template = template
        self.scope = scope
        self.status = NodeStatus.PENDING
        self.reason: str | None = None
        # the inputs' values, in the template's input order (None until they resolve): a tuple
        # rather than a dict by name, a third of its size in a fan-out of hundreds of thousands
        self.resolved: tuple[Any, ...] | None = None
        self.outputs: Mapping[str, Any] = NO_OUTPUTS
        self.assets: list[Any] | tuple[()] = ()
        self.details: dict[str, Any] | None = None
        self.items: list[Any] | None = None
        # filled once by the scheduler when the instance is wired
        self.input_links: tuple[Link | None, ...] = ()
        self.conditional_links: tuple[tuple[Link, ...], ...] = ()
        self.order_links: tuple[Link, ...] = ()
        # inputs_array rows: per input, per row, per sub-input, where its ref points (or None)
        self.row_links: tuple[tuple[tuple[Link | None, ...], ...], ...] = ()
        self.branch_links: tuple[Instance, ...] = ()
        self.blocked = 0
        self.dependents: list[Instance] | tuple[()] = ()
        self.iterations: list[Scope] | None = None
        self.children_left = 0
        self.failed_child: Instance | None = None
        self.job_id: str | None = None
        self.attempt = 0
        self.is_template_copy = template_copy
        self.cause: dict[str, Any] | None = None  # decisive values of a skip, failure or reject
        self.handed_out = False  # by `ready()`, its outcome not applied yet

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
    if mode == INSTANCE:
        value = output_value(target.outputs, name)
        if flatten and target.template.type == "for-each" and name in (None, "output"):
            value = flatten_once(value)
        return value
    if mode == ITEM:
        if name in (None, "output", "item"):
            return target.item
        if name == "index":
            return target.index
        if name == "all":
            return {"item": target.item, "index": target.index}
        return target.loop.outputs.get(name)
    values = collect(plan, instances, target, extra, name)
    return flatten_once(values) if flatten else values


def collect(
    plan: Plan, instances: dict[str, Instance], loop: Instance, template_id: str, name: str | None
) -> list[Any]:
    """Values of the clones of `template_id` below `loop`, in iteration order (outer-major),
    skipped clones left out."""
    loops = plan.nodes[template_id].loops
    values: list[Any] = []
    for scope in loop.iterations or ():
        next_id = loops[scope.depth] if len(loops) > scope.depth else template_id
        clone = instances[next_id + scope.suffix]
        if next_id == template_id:
            if clone.status is NodeStatus.SUCCESS:
                values.append(output_value(clone.outputs, name))
        else:
            values.extend(collect(plan, instances, clone, template_id, name))
    return values


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
