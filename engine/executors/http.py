"""The http executor: a model node runs on another Scenario-compatible API (another flowgraph
server, for one).

For each kind of node (type, modelId and input names) it creates, once, a one-node ready
workflow on the remote whose inputs feed the node; each call runs it with the call's inputs,
polls the job, and maps the remote node's assets back. Network errors, 429 and 5xx answers are
transient (retried with backoff by the call policy); every run carries the call's idempotency
key, so a retried run is not started twice by a server that honours it (flowgraph does).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import anyio
import httpx

from engine.errors import TransientExecutorError
from engine.protocols import Asset, ExecutorResult, NodeCall

REMOTE_NODE = "node"
TERMINAL = {"success", "failure", "canceled"}


class RemoteError(RuntimeError):
    """The remote API refused the call (a 4xx other than 408/429), or its job failed."""


class HttpExecutor:
    name = "http"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "flowgraph",
        api_secret: str = "flowgraph",
        poll_interval: float = 0.1,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = httpx.BasicAuth(api_key, api_secret)
        self.poll_interval = poll_interval
        self.transport = transport
        self._workflows: dict[str, str] = {}
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url, auth=self.auth, timeout=60, transport=self.transport
            )
        return self._client

    async def request(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = await self.client().request(method, path, **options)
        except httpx.TransportError as error:
            raise TransientExecutorError(f"{method} {path}: {error}") from None
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise TransientExecutorError(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise RemoteError(f"{method} {path}: HTTP {response.status_code}: {message}")
        return response.json()

    async def workflow_for(self, call: NodeCall) -> str:
        """The remote one-node workflow for this kind of node, created on first use."""
        names = sorted(call.inputs)
        signature = json.dumps([call.node_type, call.model_id, names])
        key = hashlib.blake2b(signature.encode(), digest_size=8).hexdigest()
        found = self._workflows.get(key)
        if found is not None:
            return found
        inputs = [{"name": name, "type": _input_type(call.inputs[name])} for name in names]
        node: dict[str, Any] = {
            "id": REMOTE_NODE,
            "type": call.node_type,
            "inputs": [{**i, "ref": {"node": "workflow", "name": i["name"]}} for i in inputs],
        }
        if call.model_id:
            node["modelId"] = call.model_id
        created = await self.request(
            "POST",
            "/workflows",
            json={
                "name": f"flowgraph {call.node_type} {call.model_id or ''}".strip(),
                "description": "one model node, run for a remote flowgraph engine",
            },
        )
        workflow_id: str = created["workflow"]["id"]
        await self.request(
            "PUT",
            f"/workflows/{workflow_id}",
            json={"flow": [node], "inputs": inputs, "status": "ready"},
        )
        self._workflows[key] = workflow_id
        return workflow_id

    async def run(self, call: NodeCall) -> ExecutorResult:
        workflow_id = await self.workflow_for(call)
        body = {k: v for k, v in call.inputs.items() if v is not None}
        started = await self.request(
            "PUT",
            f"/workflows/{workflow_id}/run",
            json=body,
            headers={"Idempotency-Key": call.idempotency_key},
        )
        job_id: str = started["job"]["jobId"]
        try:
            job = started["job"]
            while job["status"] not in TERMINAL:
                await anyio.sleep(self.poll_interval)
                job = (await self.request("GET", f"/jobs/{job_id}"))["job"]
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.request("POST", f"/jobs/{job_id}/action", json={"action": "cancel"})
            raise
        if job["status"] != "success":
            error = job.get("metadata", {}).get("error") or job["status"]
            raise RemoteError(f"remote job `{job_id}` ended {job['status']}: {error}")
        node = next(n for n in job["metadata"]["flow"] if n["id"] == REMOTE_NODE)
        assets = [
            Asset(a["assetId"], a.get("url", ""), a.get("kind", "image"))
            for a in node.get("assets", [])
        ]
        outputs = node.get("output") if isinstance(node.get("output"), dict) else {}
        return ExecutorResult(assets=assets, outputs={**outputs, "remoteJobId": job_id})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _input_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "string_array"
    return "string"
