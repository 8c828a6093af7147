"""The time budget of expressions that can run long.

CEL (the Rust `cel` package) holds the interpreter for the whole of an evaluation and has no
limit of its own on time or memory; a comprehension over a few thousand items can take
minutes. jinja2's sandbox bounds `range` to 100,000 items and, here, `*` and `**` to the
`max_value` limit, but nested loops still take as long as they take. Neither can be
interrupted from the event loop, so an expression that *can* run long (see
`Expression.runs_apart`: a computing template, a call whose cost is not its inputs' size,
inputs larger than its work allows inline, see `INLINE_WORK`) is evaluated in a worker
process: its node fails when it takes more than `Limits.expression_seconds` (the process is
killed) or more memory than `WORKER_MEMORY`, and the event loop stays free meanwhile.
Everything else (a substitution, linear filters, arithmetic, a comprehension over a few
items) runs inline, as its cost is bounded by its inputs' size.
"""

from __future__ import annotations

import os
import pickle
import resource
import sys
from typing import Any

import anyio
from anyio.lowlevel import RunVar

from engine.compile.compiler import TemplateNode
from engine.compile.expressions import compile_expression, inputs_exceed
from engine.limits import Limits
from engine.protocols import Completed, Failed, NodeCall, Outcome

WORKER_MEMORY = 2 << 30  # bytes of address space a worker may add to what it holds at start
_capped = False


def runs_apart(template: TemplateNode, inputs: dict[str, Any]) -> bool:
    """Whether the node's expressions need the budget with these inputs (see
    `inline_share`: a logic node's cases share what one may do inline)."""
    return inputs_exceed(template.inline_share, inputs)


async def start_apart(template: TemplateNode, call: NodeCall, limits: Limits) -> Outcome:
    """`template.kind.start(call)` in a worker process, within `limits.expression_seconds`."""
    import anyio.to_process  # with subprocess and the workers' machinery: only when needed

    try:
        kind = pickle.dumps(template.kind)  # a kind defined inside a function cannot travel
    except (pickle.PicklingError, AttributeError, TypeError):
        return template.kind.start(call, template.expressions)
    seconds = limits.expression_seconds
    try:
        # a free worker first: the budget counts the evaluation, not the wait for a process
        async with _worker_slots():
            with anyio.fail_after(seconds):
                outcome: Outcome = await anyio.to_process.run_sync(
                    _start, kind, call, limits.max_value, cancellable=True
                )
    except TimeoutError:
        return Failed(
            f"its expression ran longer than {seconds:g}s and was stopped "
            f"(expression_seconds; {limits.how_to_raise('expression_seconds')})"
        )
    except anyio.BrokenWorkerProcess:
        return Failed(
            "its expression's worker process died, most likely out of memory (a worker may "
            f"use {WORKER_MEMORY >> 20} MiB)"
        )
    return outcome


_slots: RunVar[anyio.CapacityLimiter] = RunVar("flowgraph-expression-workers")


def _worker_slots() -> anyio.CapacityLimiter:
    """As many as anyio's worker processes (one per CPU), per event loop."""
    try:
        return _slots.get()
    except LookupError:
        slots = anyio.CapacityLimiter(os.cpu_count() or 1)
        _slots.set(slots)
        return slots


def _start(kind_bytes: bytes, call: NodeCall, max_value: int) -> Completed | Failed:
    """In the worker: compile the node's expressions and start it."""
    _cap_memory()
    kind = pickle.loads(kind_bytes)
    expressions = {}
    for name, (source, _) in kind.expressions(call.node).items():
        expression = compile_expression(source)
        expression.max_value = max_value
        expressions[name] = expression
    try:
        outcome: Completed | Failed = kind.start(call, expressions)
    except MemoryError:
        return Failed(f"its expression needed more than {WORKER_MEMORY >> 20} MiB of memory")
    except Exception as error:  # as inline: a node kind's own error fails its node
        return kind_failed(call.node_type, error)
    return outcome


def kind_failed(node_type: str, error: Exception) -> Failed:
    """What a node kind's own error does: it fails its node (inline or in a worker)."""
    return Failed(f"{node_type} node: {type(error).__name__}: {error}")


def _cap_memory() -> None:
    global _capped
    if _capped or not sys.platform.startswith("linux"):
        return
    with open("/proc/self/statm") as statm:
        held = int(statm.read().split()[0]) * resource.getpagesize()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = held + WORKER_MEMORY
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    _capped = True
