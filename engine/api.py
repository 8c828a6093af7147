"""The facade every surface uses: compile, run, decide, cancel, read jobs."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compiler import Plan, compile_flow
from .document import load_workflow, read_document
from .errors import UnknownJobError
from .executors import CallPolicy, DryRunExecutor, ExecutorRouter, PythonExecutor, Route
from .instances import Instance
from .job import job_document
from .models import Workflow
from .protocols import (
    Completed,
    EventSink,
    Executor,
    Failed,
    JobStatus,
    NodeCall,
    NodeKind,
    PythonModelFunction,
)
from .run_inputs import validate_run_inputs
from .runner import Runner
from .scheduler import Clock, Scheduler, utc_now

MAX_WORKFLOW_DEPTH = 8


def new_job_id() -> str:
    """`job_` plus 25 random url-safe characters, like Scenario's ids."""
    return "job_" + secrets.token_urlsafe(19)[:25].replace("-", "x").replace("_", "y")


@dataclass
class JobRun:
    """A job the engine is running or has run: its scheduler, runner and document."""

    workflow: Workflow
    plan: Plan
    scheduler: Scheduler
    runner: Runner
    created_at: str
    parent_job_id: str | None = None
    extra_metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return self.scheduler.job_id

    @property
    def status(self) -> JobStatus:
        return self.scheduler.status

    @property
    def waiting(self) -> list[Instance]:
        """Gates waiting for a decision."""
        return list(self.scheduler.waiting.values())

    def document(self) -> dict[str, Any]:
        """The job as Scenario's API shows it (no envelope)."""
        return job_document(
            self.scheduler, created_at=self.created_at, extra_metadata=self.extra_metadata
        )


class Engine:
    """Runs Scenario workflows locally.

    Model nodes go to `executors` (a router); by default a dry-run executor serves every model
    node, and functions given in `python_models` serve their `modelId` first.
    """

    def __init__(
        self,
        *,
        executors: ExecutorRouter | None = None,
        python_models: Mapping[str, PythonModelFunction] | None = None,
        dry_run: DryRunExecutor | None = None,
        policy: CallPolicy | None = None,
        kinds: Mapping[str, NodeKind] | None = None,
        workflows: Mapping[str, Workflow] | None = None,
        sinks: Iterable[EventSink] = (),
        keep_going: bool = False,
        seed: int = 0,
        clock: Clock = utc_now,
        job_ids: Callable[[], str] = new_job_id,
    ) -> None:
        if kinds is None:
            from nodes import default_registry

            kinds = default_registry()
        self.kinds = dict(kinds)
        self.policy = policy or CallPolicy()
        self.seed = seed
        default = dry_run or DryRunExecutor(seed=seed)
        router = executors or ExecutorRouter(default=default)
        if python_models:
            python = PythonExecutor(python_models)
            router = ExecutorRouter(
                routes=[Route(python, model_id=m) for m in python.functions] + router.routes,
                default=router.default,
            )
        self.router = router
        self.workflows: dict[str, Workflow] = dict(workflows or {})
        self.sinks: list[EventSink] = list(sinks)
        self.keep_going = keep_going
        self.clock = clock
        self.job_ids = job_ids
        self.jobs: dict[str, JobRun] = {}

    # ----- documents ----------------------------------------------------------------------------

    def load(self, document: Workflow | Mapping[str, Any] | str | Path) -> Workflow:
        """A Workflow from a model, a parsed document (any accepted form) or a file path."""
        if isinstance(document, Workflow):
            return document
        if isinstance(document, str | Path):
            return read_document(document)
        return load_workflow(dict(document))

    def compile(self, document: Workflow | Mapping[str, Any] | str | Path) -> Plan:
        """Validate and compile; raises ValidationError listing every problem."""
        return compile_flow(self.load(document), self.kinds)

    def subscribe(self, sink: EventSink) -> None:
        """Receive every transition of every job from now on."""
        self.sinks.append(sink)

    # ----- running ------------------------------------------------------------------------------

    def prepare(
        self,
        document: Workflow | Mapping[str, Any] | str | Path,
        inputs: Mapping[str, Any] | None = None,
        *,
        keep_going: bool | None = None,
        job_id: str | None = None,
        parent: JobRun | None = None,
        lineage: Sequence[str] = (),
    ) -> JobRun:
        """Compile, check the run inputs and create the job (queued; nothing runs yet)."""
        workflow = self.load(document)
        plan = compile_flow(workflow, self.kinds)
        values = validate_run_inputs(workflow, inputs or {})
        scheduler = Scheduler(
            plan,
            job_id=job_id or self.job_ids(),
            inputs=values,
            keep_going=self.keep_going if keep_going is None else keep_going,
            clock=self.clock,
        )
        chain = (*lineage, workflow.id or "<root>")

        async def run_child(
            instance: Instance, call: NodeCall, workflow_id: str
        ) -> Completed | Failed:
            return await self._run_child(job, call, workflow_id, chain)

        runner = Runner(
            scheduler,
            router=self.router,
            policy=self.policy,
            sinks=self.sinks,
            child_runner=run_child,
            seed=self.seed,
        )
        job = JobRun(
            workflow=workflow,
            plan=plan,
            scheduler=scheduler,
            runner=runner,
            created_at=scheduler.status_history[0][0],
            parent_job_id=parent.job_id if parent else None,
        )
        if parent is not None:
            job.extra_metadata["workflowJobId"] = parent.job_id
        self.jobs[scheduler.job_id] = job
        return job

    async def run(
        self,
        document: Workflow | Mapping[str, Any] | str | Path,
        inputs: Mapping[str, Any] | None = None,
        *,
        keep_going: bool | None = None,
        job_id: str | None = None,
    ) -> JobRun:
        """Run a workflow to its end or to the first gates that wait."""
        job = self.prepare(document, inputs, keep_going=keep_going, job_id=job_id)
        await job.runner.run()
        return job

    async def resume(self, job_id: str) -> JobRun:
        """Continue a job as far as it can go (after decisions)."""
        job = self.get(job_id)
        await job.runner.run()
        return job

    async def decide(self, job_id: str, node_id: str, decision: Any) -> JobRun:
        """Approve (`"approve"`), reject (`"reject"`) or select (`{"select": [i, ...]}`) at a
        waiting gate, then continue the job. Raises DecisionError, changing nothing, when the
        decision cannot apply."""
        job = self.get(job_id)
        job.scheduler.decide(node_id, decision)
        job.runner.announce()
        await job.runner.run()
        return job

    def cancel(self, job_id: str) -> JobRun:
        """Cancel a job: calls in flight are cancelled, unfinished nodes skipped."""
        job = self.get(job_id)
        job.runner.cancel()
        return job

    def get(self, job_id: str) -> JobRun:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise UnknownJobError(f"no job `{job_id}`") from None

    # ----- sub-workflows --------------------------------------------------------------------------

    async def _run_child(
        self, parent: JobRun, call: NodeCall, workflow_id: str, lineage: tuple[str, ...]
    ) -> Completed | Failed:
        child_workflow = self.workflows.get(workflow_id)
        if child_workflow is None:
            known = ", ".join(f"`{w}`" for w in self.workflows) or "none"
            return Failed(f"unknown workflow `{workflow_id}`; registered: {known}")
        if workflow_id in lineage:
            return Failed("cycle of workflows: " + " -> ".join([*lineage, workflow_id]))
        if len(lineage) >= MAX_WORKFLOW_DEPTH:
            return Failed(f"sub-workflows nested deeper than {MAX_WORKFLOW_DEPTH}")
        declared = {i.name for i in child_workflow.inputs}
        inputs = {k: v for k, v in call.inputs.items() if k in declared and v is not None}
        try:
            child = self.prepare(child_workflow, inputs, parent=parent, lineage=lineage)
        except ValueError as error:
            return Failed(f"sub-workflow `{workflow_id}`: {error}")
        await child.runner.run()
        document = child.document()
        if child.status is JobStatus.SUCCESS:
            metadata = document["metadata"]
            assets = [
                a
                for i in child.scheduler.instances.values()
                for a in i.assets
                if a.asset_id in set(metadata["assetIds"])
            ]
            return Completed(
                {"output": list(metadata["assetIds"]), "all": metadata["output"]}, assets=assets
            )
        if child.waiting:
            return Failed(
                f"sub-workflow `{workflow_id}` (job `{child.job_id}`) waits at "
                f"gate `{child.waiting[0].id}`; gates inside sub-workflows are not "
                "supported"
            )
        return Failed(
            f"sub-workflow `{workflow_id}` (job `{child.job_id}`) ended "
            f"{child.status.value}: {document['metadata'].get('error', 'no error')}"
        )


def executor_route(
    executor: Executor, *, node_type: str | None = None, model_id: str | None = None
) -> Route:
    """A routing rule: nodes of `node_type` / `model_id` (glob patterns) go to `executor`."""
    return Route(executor, node_type=node_type, model_id=model_id)
