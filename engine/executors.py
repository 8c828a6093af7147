"""Executors run model nodes: built-in `dry-run` and `python`, a router, and the call policy
(retries with backoff for transient errors, a per-call timeout)."""

from __future__ import annotations

import fnmatch
import hashlib
import inspect
import random
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from engine.errors import TransientExecutorError
from engine.protocols import (
    Asset,
    Completed,
    Executor,
    ExecutorResult,
    Failed,
    NodeCall,
    PythonModelFunction,
)


class DryRunExecutor:
    """Offline stand-in for Scenario's models: deterministic assets, optional latency/failures.

    Asset ids derive from the seed, the node's (clone) id, the attempt and the inputs: stable
    across runs, distinct between nodes. An asset's url is a `file://` url of a small placeholder
    PNG under `assets_dir`, one of 256 colours picked by the asset id, so a 100,000-node run
    writes at most 256 files. With `assets_dir=None` nothing is written and the url uses the
    `dry-run://` scheme. An input named `numSamples` or `numOutputs` asks for that many assets.
    """

    name = "dry-run"

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        fail_nodes: Iterable[str] = (),
        assets_dir: str | Path | None = None,
        cost_per_call: float = 1.0,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be between 0 and 1, got {failure_rate}")
        self.seed = seed
        self.latency = latency
        self.failure_rate = failure_rate
        self.fail_nodes = frozenset(fail_nodes)
        self.assets_dir = Path(assets_dir) if assets_dir is not None else None
        self.cost_per_call = cost_per_call
        self._placeholder_urls: dict[int, str] = {}
        if self.assets_dir is not None:
            self.assets_dir.mkdir(parents=True, exist_ok=True)

    def asset_digest(self, call: NodeCall) -> str:
        # the inputs are built in the node's input order, so their repr is stable across runs
        inputs = repr(call.inputs)
        key = f"{self.seed}|{call.node_id}|{call.attempt}|{inputs}"
        return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()

    async def run(self, call: NodeCall) -> ExecutorResult:
        if self.latency:
            await anyio.sleep(self.latency)
        return self.compute(call)

    def compute(self, call: NodeCall) -> ExecutorResult:
        """The result, without the simulated latency (also what a remote worker computes)."""
        if call.node_id in self.fail_nodes or call.template_id in self.fail_nodes:
            raise RuntimeError(f"dry-run failure injected for `{call.template_id}` (--fail)")
        digest = self.asset_digest(call)
        if (
            self.failure_rate
            and random.Random(f"{digest}:{call.retry}").random() < self.failure_rate
        ):
            raise TransientExecutorError(
                f"dry-run simulated failure (rate {self.failure_rate}) on attempt {call.attempt}"
            )
        count = _requested_count(call.inputs)
        assets = [
            self._asset(f"asset_{digest}" if n == 0 else f"asset_{digest}_{n}")
            for n in range(count)
        ]
        outputs: dict[str, Any] = {}
        if call.node_type == "generate-prompt":
            outputs["prompt"] = f"dry-run prompt from `{call.node_id}`"
        return ExecutorResult(assets=assets, outputs=outputs)

    def _asset(self, asset_id: str) -> Asset:
        if self.assets_dir is None:
            return Asset(asset_id, f"dry-run://{asset_id}.png", "image")
        colour = int(asset_id[6:8], 16)  # the first byte of the id's digest
        url = self._placeholder_urls.get(colour)
        if url is None:
            path = self.assets_dir / f"dry-run-{colour:03d}.png"
            if not path.exists():
                path.write_bytes(_placeholder_png(colour))
            url = self._placeholder_urls[colour] = path.resolve().as_uri()
        return Asset(asset_id, url, "image")


def _requested_count(inputs: Mapping[str, Any]) -> int:
    for name in ("numSamples", "numOutputs"):
        value = inputs.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64:
            return value
    return 1


def _placeholder_png(colour: int, size: int = 8) -> bytes:
    """A tiny valid PNG of one of 256 colours."""
    red, green, blue = hashlib.blake2b(bytes([colour]), digest_size=3).digest()
    row = b"\x00" + bytes((red, green, blue)) * size
    raw = row * size

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class PythonExecutor:
    """Calls a registered Python function (sync or async) per `modelId`: for embedding.

    A function receives the NodeCall and returns an ExecutorResult, a mapping (`assets` plus
    other named outputs) or a list of assets; an asset is an Asset, a dict with `assetId`/`url`
    /`kind`, or an asset id string.
    """

    name = "python"

    def __init__(self, functions: Mapping[str, PythonModelFunction] | None = None) -> None:
        self.functions: dict[str, PythonModelFunction] = dict(functions or {})

    def register(self, model_id: str, function: PythonModelFunction) -> None:
        self.functions[model_id] = function

    async def run(self, call: NodeCall) -> ExecutorResult:
        function = self.functions.get(call.model_id or "")
        if function is None:
            raise LookupError(f"no Python function registered for modelId `{call.model_id}`")
        result = function(call)
        if inspect.isawaitable(result):
            result = await result
        return normalize_result(result)


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
            return Failed(f"executor `{executor.name}`: {error}")
        try:
            normalized = normalize_result(result)
        except TypeError as error:
            return Failed(f"executor `{executor.name}`: {error}")
        outputs = dict(normalized.outputs)
        outputs["output"] = [asset.asset_id for asset in normalized.assets]
        return Completed(outputs, assets=list(normalized.assets))
    raise AssertionError("unreachable: the loop returns on its last attempt")
