"""How a model call reaches an executor: routes (node type and `modelId` globs), the call
policy (retries with backoff for transient errors, a per-call timeout, concurrency), and the
shapes an executor may answer with."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

from engine.errors import TransientExecutorError
from engine.protocols import (
    Asset,
    AssetOutputs,
    Completed,
    Executor,
    ExecutorResult,
    Failed,
    NodeCall,
)


def normalize_result(result: Any) -> ExecutorResult:
    """Accept the shapes a Python model function may return."""
    if isinstance(result, ExecutorResult):
        return result
    if isinstance(result, Mapping):
        outputs = {k: v for k, v in result.items() if k != "assets"}
        return ExecutorResult(
            assets=[_asset(a) for a in result.get("assets") or []], outputs=outputs
        )
    if isinstance(result, list | tuple):
        return ExecutorResult(assets=[_asset(a) for a in result])
    raise TypeError(
        f"a model function returned {type(result).__name__}; return an "
        "ExecutorResult, a mapping with `assets`, or a list of assets"
    )


def _asset(value: Any) -> Asset:
    if isinstance(value, Asset):
        return value
    if isinstance(value, str):
        return Asset(value, f"asset://{value}")
    if isinstance(value, Mapping) and "assetId" in value:
        return Asset(
            str(value["assetId"]), str(value.get("url", "")), str(value.get("kind", "image"))
        )
    raise TypeError(
        f"not an asset: `{value!r}`; give an Asset, an asset id or {{'assetId': ..., 'url': ...}}"
    )


@dataclass(frozen=True, slots=True)
class Route:
    """Send nodes matching `node_type` and `model_id` (glob patterns; None matches all)."""

    executor: Executor
    node_type: str | None = None
    model_id: str | None = None

    def matches(self, node_type: str, model_id: str | None) -> bool:
        if self.node_type is not None and not fnmatch.fnmatchcase(node_type, self.node_type):
            return False
        return self.model_id is None or (
            model_id is not None and fnmatch.fnmatchcase(model_id, self.model_id)
        )


@dataclass(slots=True)
class ExecutorRouter:
    """The first matching route serves a node; otherwise the default executor, if any."""

    routes: list[Route] = field(default_factory=list)
    default: Executor | None = None

    def route(self, node_type: str, model_id: str | None) -> Executor | None:
        for candidate in self.routes:
            if candidate.matches(node_type, model_id):
                return candidate.executor
        return self.default


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """Retries for transient errors (exponential backoff), per-call timeout, concurrency."""

    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    timeout: float | None = None
    concurrency: int = 8

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")


async def call_executor(
    executor: Executor, call: NodeCall, policy: CallPolicy
) -> Completed | Failed:
    """Run one model call under the policy; every error becomes a `Failed` with its message."""
    for attempt in range(policy.retries + 1):
        try:
            if policy.timeout is not None:
                with anyio.fail_after(policy.timeout):
                    result = await executor.run(call)
            else:
                result = await executor.run(call)
        except (TransientExecutorError, TimeoutError) as error:
            message = (
                f"timed out after {policy.timeout}s"
                if isinstance(error, TimeoutError)
                else str(error)
            )
            if attempt == policy.retries:
                tries = policy.retries + 1
                return Failed(
                    f"executor `{executor.name}`: {message} "
                    f"(gave up after {tries} attempt{'s' if tries > 1 else ''})"
                )
            await anyio.sleep(min(policy.max_backoff, policy.backoff * 2**attempt))
            call.retry += 1
            continue
        except Exception as error:  # an executor's own error fails the node, never the engine
            return executor_outcome(executor, call, error)
        return executor_outcome(executor, call, result)
    raise AssertionError("unreachable: the loop returns on its last attempt")


def executor_outcome(executor: Executor, call: NodeCall, answer: Any) -> Completed | Failed:
    """What an executor's answer to a call makes of its node: its result, checked and
    normalized, completes it; an exception it raised (not retried) fails it, with its message."""
    if type(answer) is ExecutorResult and answer.assets and not answer.outputs:
        # assets alone (a dry-run model's answer): nothing to normalize or check
        assets = tuple(answer.assets)  # a tuple: a third smaller than a list, kept per node
        return Completed(AssetOutputs(assets), assets)
    if isinstance(answer, Exception):
        return Failed(f"executor `{executor.name}`: {answer}")
    try:
        normalized = normalize_result(answer)
    except TypeError as error:
        return Failed(f"executor `{executor.name}`: {error}")
    outputs = dict(normalized.outputs)
    if call.node_type == "generate-prompt" and "prompt" in outputs:
        outputs["output"] = outputs["prompt"]  # it makes text: a ref to it reads the prompt
    else:
        outputs["output"] = [asset.asset_id for asset in normalized.assets]
    try:
        if normalized.outputs:  # a node's outputs are kept and served as JSON (asset ids are)
            orjson.dumps(outputs)
    except TypeError as error:
        return Failed(f"executor `{executor.name}` answered outputs that are not JSON: {error}")
    return Completed(outputs, assets=list(normalized.assets))
