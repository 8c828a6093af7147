"""Linking an instance into the runtime graph: where each of its inputs, `dependsOn` entries
and branch sources points (see `Link` in engine/run/instances.py), and what it waits on.

The links of a template's clones that name no instance of their own iteration are the same
for every clone: they share one tuple (`shared_links`), and the scheduler links such a clone
once per template (see `Scheduler._wire`).
"""

from __future__ import annotations

from functools import cache, lru_cache

from engine.compile.compiler import CompiledInput, Plan
from engine.run.instances import (
    INSTANCE,
    ITEM,
    ITEM_UP,
    WORKFLOW,
    FullInstance,
    Instance,
    Link,
    Scope,
    locate,
)


@lru_cache(maxsize=1024)  # bounded: the names come from the flows a server is sent
def _workflow_link(name: str | None) -> Link:
    """The link of an input to the run input `name` (one for all the instances that read it)."""
    return (WORKFLOW, None, name)


@cache
def _no_conditionals(inputs: int) -> tuple[tuple[Link, ...], ...]:
    """The conditional links of an instance with this many inputs, none of them conditional:
    one tuple shared by every such instance (a large fan-out makes hundreds of thousands)."""
    return ((),) * inputs


def link_instance(
    plan: Plan,
    instances: dict[str, Instance],
    shared_links: dict[tuple[Link | None, ...], tuple[Link | None, ...]],
    instance: Instance,
) -> bool:
    """Point the instance's inputs, `dependsOn` entries and branch sources at instances
    of the runtime graph, and count the unfinished ones it waits on (the hot path of a
    loop's expansion and of a replay: no closures, nothing built that is not needed).

    Returns whether a skip rule has anything to read (see `skip_cause`): a link to another
    instance, or a conditional input. A loop's first body node, which reads only the loop's
    item, has neither, and is never skipped."""
    scope = instance.scope
    template = instance.template
    waits_on: list[Instance] = []  # what the links point at (ITEM links wait on nothing)
    has_conditionals = False
    if template.inputs:
        input_links: list[Link | None] = []
        conditional_links: list[tuple[Link, ...]] = []
        has_rows = False
        # every link the same for the template's clones in this loop (none names one of
        # its own iteration's instances): they share one tuple
        shared = True
        for compiled in template.inputs:
            link = ref_link(plan, instances, compiled, scope, waits_on)
            if link is not None and link[1] is not None and link[1].scope.depth >= scope.depth:
                shared = False
            input_links.append(link)
            if compiled.conditional:
                entries = tuple(locate(plan, instances, e, scope) for e in compiled.conditional)
                waits_on.extend(entry[1] for entry in entries if entry[0] != ITEM)
                conditional_links.append(entries)
                has_conditionals = True
            else:
                conditional_links.append(())
            has_rows = has_rows or bool(compiled.rows)
        links = tuple(input_links)
        instance.input_links = shared_links.setdefault(links, links) if shared else links
        instance.conditional_links = (
            tuple(conditional_links)
            if has_conditionals
            else _no_conditionals(len(conditional_links))
        )
        if has_rows:
            assert isinstance(instance, FullInstance)  # see Instance.of
            instance.row_links = tuple(
                tuple(
                    tuple(ref_link(plan, instances, cell, scope, waits_on) for cell in row)
                    for row in compiled.rows
                )
                for compiled in template.inputs
            )
    if template.depends_on:
        order = tuple(locate(plan, instances, target, scope) for target in template.depends_on)
        waits_on.extend(link[1] for link in order if link[0] != ITEM)
        assert isinstance(instance, FullInstance)
        instance.order_links = order
    if template.branch_sources:
        branches = [locate(plan, instances, s, scope) for s in template.branch_sources]
        assert isinstance(instance, FullInstance)
        instance.branch_links = tuple(b[1] for b in branches if b[0] == INSTANCE)
        waits_on.extend(instance.branch_links)
    if not waits_on:
        return has_conditionals
    for dependency in {d.id: d for d in waits_on}.values():
        if not dependency.status.terminal:
            instance.blocked += 1
            if dependency.dependents:
                dependency.dependents.append(instance)
            else:
                dependency.dependents = [instance]
    return True


def ref_link(
    plan: Plan,
    instances: dict[str, Instance],
    compiled: CompiledInput,
    scope: Scope,
    waits_on: list[Instance],
) -> Link | None:
    """Where an input's (or an inputs_array cell's) `ref.node` points, if anywhere; an
    instance it points at is added to `waits_on`."""
    node = compiled.ref_node
    if node is None:
        return None
    if node == "workflow":
        return _workflow_link(compiled.ref_name)
    link = locate(plan, instances, node, scope)
    if link[0] == ITEM:  # relative to the instance's scope, the same for every clone
        levels = scope.depth - link[1].depth
        return ITEM_UP[levels] if levels < len(ITEM_UP) else (ITEM, None, levels)
    waits_on.append(link[1])
    return link
