"""Why an instance is skipped: the skip rules of the run semantics, each with its reason text
and the decisive values (for explanations and the event log)."""

from __future__ import annotations

from typing import Any

from engine.compile.compiler import CompiledInput
from engine.protocols import NodeStatus
from engine.run.instances import (
    BAD_STATUSES,
    COLLECTION,
    INSTANCE,
    ITEM,
    WORKFLOW,
    Instance,
    Link,
    json_text,
    output_value,
)

Cause = tuple[str, dict[str, Any]]


def ended(status: NodeStatus) -> str:
    """How a node ended, in words: `failed`, `was skipped`, `was rejected`."""
    return "failed" if status is NodeStatus.FAILURE else f"was {status.value}"


def skip_cause(instance: Instance) -> Cause | None:
    """The first skip rule that applies, in the documented order, or None."""
    for link in instance.order_links:
        if link[0] != ITEM and link[1].status in BAD_STATUSES:
            source = link[1]
            return (
                f"`dependsOn` `{source.id}` {ended(source.status)}",
                {"cause": "dependsOn", "node": source.id, "status": source.status.value},
            )
    for branch in instance.branch_links:
        if branch.status is not NodeStatus.SUCCESS:
            return (
                f"branch source `{branch.id}` {ended(branch.status)}",
                {"cause": "branch-source", "node": branch.id, "status": branch.status.value},
            )
        chosen = branch.outputs.get("output")
        if chosen != instance.template.id:
            return (
                f"branch `{instance.template.id}` of `{branch.id}` not taken; "
                f"it chose `{json_text(chosen)}`",
                {
                    "cause": "branch",
                    "node": branch.id,
                    "wanted": instance.template.id,
                    "chose": chosen,
                },
            )
    for compiled, input_link, conditional in zip(
        instance.template.inputs, instance.input_links, instance.conditional_links, strict=True
    ):
        if conditional and not any(matched(entry, compiled) for entry in conditional):
            states = {entry_source(e).id: entry_state(e) for e in conditional}
            shown = ", ".join(f"`{node}` {state}" for node, state in states.items())
            why = f"no branch matched ({shown})"
            gate = entry_source(conditional[0])
            one_branch = len(conditional) == 1 and compiled.has_equal
            if one_branch and gate.template.type == "logic" and gate.status is NodeStatus.SUCCESS:
                # one if/else gates it: say which branch it wanted, as a plain `equal` does
                chose = json_text(gate.outputs.get("output"))
                wanted = json_text(compiled.ref_equal)
                why = f"branch `{wanted}` of `{gate.id}` not taken; it chose `{chose}`"
            return (
                f"input `{compiled.name}`: {why}",
                {
                    "cause": "conditional",
                    "input": compiled.name,
                    "entries": states,
                    "equal": compiled.ref_equal if compiled.has_equal else None,
                },
            )
        if input_link is None or input_link[0] in (WORKFLOW, ITEM):
            continue
        source = input_link[1]
        if source.status in BAD_STATUSES:
            loop = input_link[0] == COLLECTION
            return (
                f"input `{compiled.name}`: {'loop ' if loop else ''}`{source.id}` "
                f"{ended(source.status)}",
                {
                    "cause": "input",
                    "input": compiled.name,
                    "node": source.id,
                    "status": source.status.value,
                    "loop": loop,
                },
            )
        if compiled.has_equal and not conditional and input_link[0] == INSTANCE:
            # on a logic node, `equal` is compared with the branch it chose (its `output`),
            # whatever `ref.name` passes on
            chosen = (
                source.outputs.get("output")
                if source.template.type == "logic"
                else output_value(source.outputs, compiled.ref_name)
            )
            if json_text(chosen) != json_text(compiled.ref_equal):
                return (
                    f"branch `{json_text(compiled.ref_equal)}` of `{source.id}` not taken; "
                    f"it chose `{json_text(chosen)}`",
                    {
                        "cause": "equal",
                        "input": compiled.name,
                        "node": source.id,
                        "equal": compiled.ref_equal,
                        "chose": chosen,
                    },
                )
    return None


def entry_source(entry: Link) -> Instance:
    """The instance a `ref.conditional` entry looks at (a loop item entry: its loop)."""
    if entry[0] in (INSTANCE, COLLECTION):
        source: Instance = entry[1]
        return source
    loop: Instance = entry[1].loop
    return loop


def matched(entry: Link, compiled: CompiledInput) -> bool:
    """A logic entry matches when it succeeded (and chose `equal`, if set); any other entry
    when its status is `equal` (default `success`)."""
    source = entry_source(entry)
    if source.template.type == "logic":
        return source.status is NodeStatus.SUCCESS and (
            not compiled.has_equal
            or json_text(source.outputs.get("output")) == json_text(compiled.ref_equal)
        )
    wanted = json_text(compiled.ref_equal) if compiled.has_equal else "success"
    return bool(source.status.value == wanted)


def entry_state(entry: Link) -> str:
    source = entry_source(entry)
    if source.template.type == "logic" and source.status is NodeStatus.SUCCESS:
        return f"chose `{json_text(source.outputs.get('output'))}`"
    return str(source.status.value)
