"""flowgraph: a local execution engine for Scenario workflows."""

from __future__ import annotations

from engine.api import Engine, JobRun, new_job_id
from engine.compile.compiler import Plan, compile_flow
from engine.compile.document import load_workflow, read_document
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
from engine.scheduler import Scheduler

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
    "new_job_id",
    "read_document",
]
