"""The scenario executor: a model node generates on Scenario's API through the official
`scenario-sdk` (`pip install 'flowgraph[scenario]'`), while flowgraph keeps the orchestration.

A model-like node's `modelId` and resolved inputs go to `client.generate.run_model` (a
`generate-prompt` node's to `client.generate.prompt`) with the call's idempotency key; the
inference job is polled on `jobs.retrieve` with a growing interval, and its `assetIds` come
back as the node's assets with the urls `assets.retrieve` gives. The inference job is reported
to the engine as soon as it exists (`NodeCall.remote_started`): a job resumed after a crash
polls it rather than generating again. Cancelling the node cancels the inference job.

Credentials and the base url are the SDK's own: `SCENARIO_SDK_API_KEY` and
`SCENARIO_SDK_API_SECRET` (or `SCENARIO_SDK_JWT`), and `SCENARIO_BASE_URL`, unless given.
The SDK retries what it retries (408, 409, 429, 5xx, lost connections; `max_retries` times);
what still fails then is transient for the engine's call policy when the service may answer
later, and fails the node otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio

from engine.errors import TransientExecutorError
from engine.protocols import Asset, ExecutorResult, NodeCall

if TYPE_CHECKING:
    from scenario_sdk import AsyncScenario

TERMINAL = frozenset({"success", "failure", "canceled"})
DEFAULT_CONCURRENCY = 10  # Scenario's cloud runs 10 jobs at once per team


class ScenarioError(RuntimeError):
    """Scenario refused the call, or its inference job failed or was canceled."""


class ScenarioExecutor:
    name = "scenario"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        jwt: str | None = None,
        project_id: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_retries: int = 2,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        timeout: float = 60.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.base_url = base_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.jwt = jwt
        self.project_id = project_id
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self._client: AsyncScenario | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    def client(self) -> AsyncScenario:
        if self._client is None:
            try:
                from scenario_sdk import AsyncScenario
            except ImportError:
                raise ScenarioError(
                    "the scenario executor needs the official SDK: "
                    "pip install 'flowgraph[scenario]'"
                ) from None
            given = (self.api_key, self.api_secret, self.jwt)
            names = ("SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET", "SCENARIO_SDK_JWT")
            if not any(g or os.environ.get(n) for g, n in zip(given, names, strict=True)):
                raise ScenarioError(
                    "no credentials for Scenario's API: set SCENARIO_SDK_API_KEY and "
                    "SCENARIO_SDK_API_SECRET (or SCENARIO_SDK_JWT), or `api_key` and "
                    "`api_secret` in the executor's configuration"
                )
            try:
                self._client = AsyncScenario(
                    base_url=self.base_url,
                    api_key=self.api_key,
                    api_secret=self.api_secret,
                    bearer_auth=self.jwt,
                    max_retries=self.max_retries,
                    timeout=self.timeout,
                )
            except Exception as error:  # no credentials: the SDK says which variables to set
                raise ScenarioError(str(error)) from None
        return self._client

    def _query(self) -> dict[str, Any]:
        return {"project_id": self.project_id} if self.project_id else {}

    async def run(self, call: NodeCall) -> ExecutorResult:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        async with self._limiter:
            with _sdk_errors():
                if call.node_type == "generate-prompt":
                    return await self._prompt(call)
                return await self._generate(call)

    async def _generate(self, call: NodeCall) -> ExecutorResult:
        client = self.client()
        job_id = call.remote_job_id
        if job_id is None:
            if not call.model_id:
                raise ScenarioError(f"`{call.node_type}` node `{call.node_id}` has no `modelId`")
            started = await client.generate.run_model(
                call.model_id,
                body=_body(call),
                extra_headers={"Idempotency-Key": call.idempotency_key},
                **self._query(),
            )
            job_id = started.job.job_id
            call.remote_started(job_id)
        job = await self._wait(job_id, call)
        assets = []
        for asset_id in job.metadata.asset_ids or []:
            found = (await client.assets.retrieve(asset_id, **self._query())).asset
            assets.append(Asset(found.id, found.url, found.kind))
        output = job.metadata.output
        return ExecutorResult(assets=assets, outputs=dict(output) if output else {})

    async def _prompt(self, call: NodeCall) -> ExecutorResult:
        body = _body(call)
        mode = body.pop("mode", "completion")
        answer = await self.client().generate.prompt(
            mode=mode,
            extra_body=body,
            extra_headers={"Idempotency-Key": call.idempotency_key},
            **self._query(),
        )
        if answer.prompts:
            return ExecutorResult(outputs={"prompt": answer.prompts[0]})
        call.remote_started(answer.job.job_id)
        job = await self._wait(answer.job.job_id, call)
        prompt = (job.metadata.output or {}).get("prompt")
        if not isinstance(prompt, str):
            raise ScenarioError(f"prompt job `{job.job_id}` ended without a prompt")
        return ExecutorResult(outputs={"prompt": prompt})

    async def _wait(self, job_id: str, call: NodeCall) -> Any:
        """Poll the inference job until it ends, the interval growing to `max_poll_interval`,
        reporting its progress; cancelled meanwhile, it cancels the inference job."""
        client = self.client()
        interval = self.poll_interval
        try:
            while True:
                job = (await client.jobs.retrieve(job_id, **self._query())).job
                if job.status in TERMINAL:
                    break
                call.report_progress(job.progress)
                await anyio.sleep(interval)
                interval = min(self.max_poll_interval, interval * 1.5)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await client.jobs.trigger_action(job_id, action="cancel", **self._query())
            raise
        if job.status != "success":
            why = job.metadata.error or job.metadata.hint or "no reason given"
            raise ScenarioError(f"inference job `{job_id}` ended {job.status}: {why}")
        return job

    async def estimate(self, call: NodeCall) -> float:
        """The creative units Scenario asks for this call (`dryRun=true`: nothing runs)."""
        client = self.client()
        response: Any
        with _sdk_errors():
            if call.node_type == "generate-prompt":
                body = _body(call)
                response = await client.generate.with_raw_response.prompt(
                    mode=body.pop("mode", "completion"),
                    extra_body=body,
                    dry_run="true",
                    **self._query(),
                )
            elif not call.model_id:
                raise ScenarioError(f"`{call.node_type}` node `{call.node_id}` has no `modelId`")
            else:
                response = await client.generate.with_raw_response.run_model(
                    call.model_id, body=_body(call), dry_run="true", **self._query()
                )
        cost = response.http_response.json().get("creativeUnitsCost")
        if not isinstance(cost, int | float):
            raise ScenarioError(f"the dry run of `{call.node_id}` answered no creativeUnitsCost")
        return float(cost)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        self._limiter = None


def _body(call: NodeCall) -> dict[str, Any]:
    return {name: value for name, value in call.inputs.items() if value is not None}


@contextmanager
def _sdk_errors() -> Iterator[None]:
    """The SDK's errors, once its own retries are spent, as the engine's: a refusal (4xx other
    than 408/409/429) fails the node with Scenario's message; a service that may answer later
    is transient (the call policy retries, and a started inference job is only polled)."""
    try:
        yield
    except Exception as error:
        if not type(error).__module__.startswith("scenario_sdk"):
            raise
        import scenario_sdk

        if isinstance(error, scenario_sdk.APIStatusError):
            message = _message(error.body) or str(error)
            where = f"{error.request.method} {error.request.url.path}"
            text = f"{where}: HTTP {error.status_code}: {message}"
            if error.status_code in (408, 409, 429) or error.status_code >= 500:
                raise TransientExecutorError(text) from None
            raise ScenarioError(text) from None
        if isinstance(error, scenario_sdk.APIConnectionError):
            raise TransientExecutorError(f"{error.request.url}: {error}") from None
        raise ScenarioError(str(error)) from None


def _message(body: object) -> str | None:
    if isinstance(body, dict):
        message = body.get("message")
        return message if isinstance(message, str) else None
    return None
