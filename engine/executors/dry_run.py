"""The dry-run executor: offline stand-in for Scenario's models (deterministic placeholder
assets, optional latency, failures and cost)."""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from engine.errors import TransientExecutorError
from engine.protocols import Asset, ExecutorResult, NodeCall


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
        hasher = _EMPTY_DIGEST.copy()  # a copy of an empty hasher: cheaper than making one
        hasher.update(f"{self.seed}|{call.node_id}|{call.attempt}|{call.inputs!r}".encode())
        return hasher.hexdigest()

    async def run(self, call: NodeCall) -> ExecutorResult:
        if self.latency:
            await anyio.sleep(self.latency)
        return self.compute(call)

    def run_batch(self, calls: Sequence[NodeCall]) -> list[ExecutorResult | Exception] | None:
        """Every call's result at once (see `BatchExecutor`); None when a latency is set.
        Like `run`, it answers through `compute`: a subclass changes what both answer there."""
        if self.latency:
            return None
        answers: list[ExecutorResult | Exception] = []
        for call in calls:
            try:
                answers.append(self.compute(call))
            except Exception as error:  # the error `run` would raise, given back in its place
                answers.append(error)
        return answers

    def compute(self, call: NodeCall) -> ExecutorResult:
        """The result, without the simulated latency (also what a remote worker computes)."""
        if self.fail_nodes and (
            call.node_id in self.fail_nodes or call.template_id in self.fail_nodes
        ):
            raise RuntimeError(f"dry-run failure injected for `{call.template_id}` (--fail)")
        digest = self.asset_digest(call)
        if (
            self.failure_rate
            and random.Random(f"{digest}:{call.retry}").random() < self.failure_rate
        ):
            raise TransientExecutorError(
                f"dry-run simulated failure (rate {self.failure_rate}) on attempt {call.attempt}"
            )
        if call.node_type == "generate-prompt":  # text, no asset
            subject = next((v for v in call.inputs.values() if isinstance(v, str)), "")
            prompt = f"dry-run prompt from `{call.node_id}`" + (f": {subject}" if subject else "")
            return ExecutorResult(outputs={"prompt": prompt})
        assets = [self._asset("asset_" + digest)]
        inputs = call.inputs
        if "numSamples" in inputs or "numOutputs" in inputs:  # asked for more than one
            for n in range(1, _requested_count(inputs)):
                assets.append(self._asset(f"asset_{digest}_{n}"))
        return ExecutorResult(assets)

    def _asset(self, asset_id: str) -> Asset:
        if self.assets_dir is None:
            return Asset(asset_id, f"dry-run://{asset_id}.png", "image")
        colour = int(asset_id[6:8], 16)  # the first byte of the id's digest
        url = self._placeholder_urls.get(colour)
        if url is None:
            path = self.assets_dir / f"dry-run-{colour:03d}.png"
            if not path.exists():
                path.write_bytes(placeholder_png(colour))
            url = self._placeholder_urls[colour] = path.resolve().as_uri()
        return Asset(asset_id, url, "image")


_EMPTY_DIGEST = hashlib.blake2b(digest_size=12)


def _requested_count(inputs: Mapping[str, Any]) -> int:
    for name in ("numSamples", "numOutputs"):
        value = inputs.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64:
            return value
    return 1


def placeholder_png(colour: int, size: int = 8) -> bytes:
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
