"""The distributed executor: model-node work runs on Dask distributed workers.

flowgraph stays the coordinator; each model call becomes one Dask task whose input and output
cross the wire as plain JSON. The task runs a *worker function* named by import path (by default
the dry-run executor, so a cluster can be tried offline); errors come back as node failures with
the remote message, and cancelling the node cancels the Dask task. Dask's own key is the call's
idempotency key, so a call retried while its task still exists is not run twice.

Dask distributed needs the asyncio backend of anyio.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
from typing import Any

import anyio

from engine.errors import MissingExtraError
from engine.executors.dry_run import DryRunExecutor
from engine.protocols import Asset, ExecutorResult, NodeCall

DEFAULT_TASK = "engine.executors.dask:dry_run_task"


def call_payload(call: NodeCall) -> str:
    return json.dumps(
        {
            "jobId": call.job_id,
            "nodeId": call.node_id,
            "templateId": call.template_id,
            "nodeType": call.node_type,
            "modelId": call.model_id,
            "inputs": call.inputs,
            "iterationIndex": call.iteration_index,
            "attempt": call.attempt,
            "seed": call.seed,
        },
        default=str,
    )


def call_from_payload(payload: str) -> NodeCall:
    data = json.loads(payload)
    return NodeCall(
        job_id=data["jobId"],
        node_id=data["nodeId"],
        template_id=data["templateId"],
        node_type=data["nodeType"],
        model_id=data["modelId"],
        inputs=data["inputs"],
        node=None,
        iteration_index=data["iterationIndex"],
        attempt=data["attempt"],
        seed=data["seed"],
    )


def result_payload(result: ExecutorResult) -> str:
    return json.dumps({"assets": [a.to_json() for a in result.assets], "outputs": result.outputs})


def result_from_payload(payload: str) -> ExecutorResult:
    data = json.loads(payload)
    return ExecutorResult(
        assets=[Asset(a["assetId"], a["url"], a.get("kind", "image")) for a in data["assets"]],
        outputs=data["outputs"],
    )


def dry_run_task(payload: str, settings: str) -> str:
    """Runs on a worker: the dry-run executor's result for one call (latency as a real sleep)."""
    options = json.loads(settings)
    executor = DryRunExecutor(
        seed=options.get("seed", 0),
        fail_nodes=options.get("fail", ()),
        assets_dir=options.get("assetsDir"),
    )
    if options.get("latency"):
        time.sleep(float(options["latency"]))
    return result_payload(executor.compute(call_from_payload(payload)))


def _run_task(task: str, payload: str, settings: str) -> str:
    module, _, name = task.partition(":")
    function = getattr(importlib.import_module(module), name)
    result: str = function(payload, settings)
    return result


class DaskExecutor:
    """Hands each model call to a Dask distributed cluster: `address` of a scheduler, or a
    LocalCluster of `workers` processes started on first use."""

    name = "dask"

    def __init__(
        self,
        *,
        address: str | None = None,
        workers: int = 2,
        threads_per_worker: int = 1,
        task: str = DEFAULT_TASK,
        settings: dict[str, Any] | None = None,
    ) -> None:
        if importlib.util.find_spec("distributed") is None:  # imported on first use: it is slow
            raise MissingExtraError("distributed", extra="distributed", purpose="the dask executor")
        self.address = address
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.task = task
        self.settings = json.dumps(settings or {})
        self._client: Any = None
        self._cluster: Any = None
        self._lock: anyio.Lock | None = None

    async def client(self) -> Any:
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._client is None:
                from distributed import Client, LocalCluster

                target: Any = self.address
                if target is None:
                    self._cluster = await LocalCluster(  # type: ignore[no-untyped-call]
                        n_workers=self.workers,
                        threads_per_worker=self.threads_per_worker,
                        processes=True,
                        asynchronous=True,
                        dashboard_address=None,
                    )
                    target = self._cluster
                self._client = await Client(  # type: ignore[no-untyped-call]
                    target, asynchronous=True
                )
        return self._client

    async def run(self, call: NodeCall) -> ExecutorResult:
        client = await self.client()
        future = client.submit(
            _run_task,
            self.task,
            call_payload(call),
            self.settings,
            key=f"flowgraph-{call.idempotency_key}",
            pure=False,
        )
        try:
            payload = await future
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await future.cancel()
            raise
        except Exception as error:  # the worker's exception, sent back by Dask
            raise RuntimeError(f"remote task failed: {type(error).__name__}: {error}") from None
        return result_from_payload(payload)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._cluster is not None:
            await self._cluster.close()
            self._cluster = None
