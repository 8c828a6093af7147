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
"""

from __future__ import annotations

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
