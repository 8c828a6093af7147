"""flowgraph: a local execution engine for Scenario workflows.

This module is the public surface: `Engine` (in `api`) and the types a caller handles.
`protocols` holds the contracts between the parts (executor, store, transitions, statuses);
`errors` the exceptions. The parts, in the order a workflow meets them:

- `compile/`: read and check a document, compile its flow into a plan (a networkx DAG)
- `run/`: instances and loop clones, the scheduler, the anyio runner, gates, persistence
- `executors/`: where model nodes run (dry-run, Python functions, HTTP, Dask)
- `stores/`: where workflows and jobs are kept (SQLite, PostgreSQL, memory)
- `views/`: explain, graph drawings, the HTML report
- `cli/` and `server/`: the `flowgraph` command and the Workflows HTTP API

The names below are imported on first use: a part that needs only some of the engine (a
command's `--help`, the pytest plugin) does not load all of it (networkx, pydantic).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.api import Engine, JobRun, new_job_id
    from engine.compile.compiler import Plan, compile_flow
    from engine.compile.document import load_workflow, publish_document, read_document
    from engine.compile.models import FlowNode, Job, NodeInput, Ref, Workflow
    from engine.errors import (
        CycleError,
        DecisionError,
        DocumentError,
        FlowgraphError,
        InputError,
        NodeExecutionError,
        Problem,
        TransientExecutorError,
        UnknownJobError,
        ValidationError,
    )
    from engine.executors import CallPolicy, DryRunExecutor, ExecutorRouter, PythonExecutor, Route
    from engine.protocols import (
        Asset,
        BatchExecutor,
        Executor,
        ExecutorResult,
        JobStatus,
        NodeCall,
        NodeStatus,
        Transition,
    )
    from engine.run.scheduler import Scheduler

__all__ = [
    "Asset",
    "BatchExecutor",
    "CallPolicy",
    "CycleError",
    "DecisionError",
    "DocumentError",
    "DryRunExecutor",
    "Engine",
    "Executor",
    "ExecutorResult",
    "ExecutorRouter",
    "FlowNode",
    "FlowgraphError",
    "InputError",
    "Job",
    "JobRun",
    "JobStatus",
    "NodeCall",
    "NodeExecutionError",
    "NodeInput",
    "NodeStatus",
    "Plan",
    "Problem",
    "PythonExecutor",
    "Ref",
    "Route",
    "Scheduler",
    "TransientExecutorError",
    "Transition",
    "UnknownJobError",
    "ValidationError",
    "Workflow",
    "compile_flow",
    "load_workflow",
    "publish_document",
    "new_job_id",
    "read_document",
]

_HOMES = {
    "Asset": "engine.protocols",
    "BatchExecutor": "engine.protocols",
    "CallPolicy": "engine.executors",
    "compile_flow": "engine.compile.compiler",
    "CycleError": "engine.errors",
    "DecisionError": "engine.errors",
    "DocumentError": "engine.errors",
    "DryRunExecutor": "engine.executors",
    "Engine": "engine.api",
    "Executor": "engine.protocols",
    "ExecutorResult": "engine.protocols",
    "ExecutorRouter": "engine.executors",
    "FlowgraphError": "engine.errors",
    "FlowNode": "engine.compile.models",
    "InputError": "engine.errors",
    "Job": "engine.compile.models",
    "JobRun": "engine.api",
    "JobStatus": "engine.protocols",
    "load_workflow": "engine.compile.document",
    "new_job_id": "engine.api",
    "NodeCall": "engine.protocols",
    "NodeExecutionError": "engine.errors",
    "NodeInput": "engine.compile.models",
    "NodeStatus": "engine.protocols",
    "Plan": "engine.compile.compiler",
    "Problem": "engine.errors",
    "publish_document": "engine.compile.document",
    "PythonExecutor": "engine.executors",
    "read_document": "engine.compile.document",
    "Ref": "engine.compile.models",
    "Route": "engine.executors",
    "Scheduler": "engine.run.scheduler",
    "TransientExecutorError": "engine.errors",
    "Transition": "engine.protocols",
    "UnknownJobError": "engine.errors",
    "ValidationError": "engine.errors",
    "Workflow": "engine.compile.models",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
