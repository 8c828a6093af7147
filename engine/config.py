"""Configuration in one place: a TOML file (and environment variables) for executors, routing,
stores and limits.

    [engine]
    max_concurrency = 64        # executor calls at once, for every job of the engine
    retries = 2                 # for transient executor errors
    timeout = 120               # seconds per executor call
    keep_going = false
    seed = 0

    [limits]                    # what one job may use (see engine/limits.py)
    max_nodes = 1000000         # nodes per job, loop clones included
    max_iterations = 1000000    # iterations per for-each
    expression_seconds = 5.0    # an expression that can run long, in its own process
    max_value = 10000000        # characters or items an expression may produce

    [store]
    url = "sqlite:///var/lib/flowgraph/jobs.db"   # or "memory"; default: $FLOWGRAPH_DB

    [server]
    host = "127.0.0.1"
    port = 8787
    max_body = 10485760
    costs = { default = 1, "model_flux-pro" = 4 }

    [executors.offline]
    type = "dry-run"            # dry-run | http | dask | scenario
    latency = 0.0

    [executors.cluster]
    type = "dask"
    address = "tcp://10.0.0.5:8786"   # or: workers = 2 (a LocalCluster)

    [executors.remote]
    type = "http"
    base_url = "http://gpu-box:8787/v1"

    [executors.cloud]
    type = "scenario"           # Scenario's API through scenario-sdk (SCENARIO_SDK_* variables)
    concurrency = 10

    [routing]
    default = "offline"
    [[routing.routes]]
    executor = "remote"
    node_type = "custom-model"
    model_id = "model_flux*"

`FLOWGRAPH_CONFIG` names the file when no `--config` is given; `FLOWGRAPH_DB` is the store when
the file names none; `FLOWGRAPH_API_KEY` / `FLOWGRAPH_API_SECRET` are the server's credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import Problem, ValidationError
from engine.executors import CallPolicy, DryRunExecutor, ExecutorRouter, Route
from engine.limits import LIMIT_NAMES, Limits, limit_problem
from engine.protocols import Executor

CONFIG_VARIABLE = "FLOWGRAPH_CONFIG"
EXECUTOR_TYPES = ("dry-run", "http", "dask", "scenario")


@dataclass
class Config:
    engine: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    executors: dict[str, dict[str, Any]] = field(default_factory=dict)
    routing: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def store_location(self) -> str | None:
        """`:memory:`, a SQLite path, or None (the default location)."""
        url = self.store.get("url")
        if not isinstance(url, str):
            return None
        if url == "memory":
            return ":memory:"
        if url.startswith("sqlite:///"):
            return url[len("sqlite:///") :]  # sqlite:///relative.db, sqlite:////absolute.db
        return url  # postgresql://..., or a path

    def limits_with(self, **given: float | None) -> Limits:
        """The file's `[limits]`, with the values given (not None) winning."""
        values = {**self.limits, **{k: v for k, v in given.items() if v is not None}}
        return Limits(**values)

    def policy(self) -> CallPolicy:
        return CallPolicy(
            concurrency=int(self.engine.get("max_concurrency", 8)),
            retries=int(self.engine.get("retries", 2)),
            timeout=self.engine.get("timeout"),
            backoff=float(self.engine.get("backoff", 0.5)),
        )

    def router(self) -> ExecutorRouter:
        """Executors built from the file, routed by node type and modelId."""
        built = {name: build_executor(name, spec) for name, spec in self.executors.items()}
        default_name = self.routing.get("default")
        default: Executor = (
            built[default_name]
            if default_name
            else DryRunExecutor(seed=int(self.engine.get("seed", 0)))
        )
        routes = [
            Route(built[r["executor"]], node_type=r.get("node_type"), model_id=r.get("model_id"))
            for r in self.routing.get("routes", [])
        ]
        return ExecutorRouter(routes=routes, default=default)


def build_executor(name: str, spec: dict[str, Any]) -> Executor:
    kind = spec.get("type")
    if kind == "dry-run":
        return DryRunExecutor(
            seed=int(spec.get("seed", 0)),
            latency=float(spec.get("latency", 0)),
            failure_rate=float(spec.get("failure_rate", 0)),
            assets_dir=spec.get("assets_dir"),
        )
    if kind == "http":
        from engine.executors.http import HttpExecutor

        return HttpExecutor(
            spec["base_url"],
            api_key=spec.get("api_key", "flowgraph"),
            api_secret=spec.get("api_secret", "flowgraph"),
            poll_interval=float(spec.get("poll_interval", 0.1)),
        )
    if kind == "scenario":
        return scenario_executor(spec)
    if kind == "dask":
        from engine.executors.dask import DaskExecutor

        return DaskExecutor(
            address=spec.get("address"),
            workers=int(spec.get("workers", 2)),
            threads_per_worker=int(spec.get("threads_per_worker", 1)),
            task=spec.get("task", "engine.executors.dask:dry_run_task"),
            settings=spec.get("settings"),
        )
    raise ValueError(f"executor `{name}`: unknown type `{kind}`")


def scenario_executor(spec: dict[str, Any]) -> Executor:
    """A scenario executor; what `spec` leaves out comes from the SDK's environment variables."""
    from engine.executors.scenario import DEFAULT_CONCURRENCY, ScenarioExecutor

    return ScenarioExecutor(
        base_url=spec.get("base_url"),
        api_key=spec.get("api_key"),
        api_secret=spec.get("api_secret"),
        jwt=spec.get("jwt"),
        project_id=spec.get("project_id"),
        concurrency=int(spec.get("concurrency", DEFAULT_CONCURRENCY)),
        max_retries=int(spec.get("max_retries", 2)),
        poll_interval=float(spec.get("poll_interval", 0.5)),
        max_poll_interval=float(spec.get("max_poll_interval", 5.0)),
        timeout=float(spec.get("timeout", 60.0)),
    )


def load_config(path: str | Path | None = None) -> Config:
    """Read and check the file (`FLOWGRAPH_CONFIG` when `path` is None); every problem at once."""
    location = path if path is not None else os.environ.get(CONFIG_VARIABLE)
    if location is None:
        return Config()
    import tomllib  # a run without a configuration file does without it

    file = Path(location)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError([Problem(f"no such file `{file}`")], what="configuration") from None
    except tomllib.TOMLDecodeError as error:
        raise ValidationError([Problem(f"{file}: {error}")], what="configuration") from None
    problems: list[Problem] = []
    known = {"engine", "store", "server", "executors", "routing", "limits"}
    for section in data:
        if section not in known:
            problems.append(
                Problem(
                    f"unknown section `[{section}]`; expected one of: " + ", ".join(sorted(known))
                )
            )
    executors = data.get("executors", {})
    for name, spec in executors.items():
        if not isinstance(spec, dict) or spec.get("type") not in EXECUTOR_TYPES:
            problems.append(
                Problem(
                    f"executor `{name}` needs `type` = one of: " + ", ".join(EXECUTOR_TYPES),
                    path=f"executors.{name}.type",
                )
            )
        elif spec["type"] == "http" and not spec.get("base_url"):
            problems.append(
                Problem(
                    f"http executor `{name}` needs `base_url`", path=f"executors.{name}.base_url"
                )
            )
    routing = data.get("routing", {})
    default = routing.get("default")
    if default is not None and default not in executors:
        problems.append(
            Problem(
                f"routing default `{default}` is no executor of the file", path="routing.default"
            )
        )
    for index, route in enumerate(routing.get("routes", [])):
        if route.get("executor") not in executors:
            problems.append(
                Problem(
                    f"route {index + 1} names unknown executor `{route.get('executor')}`",
                    path=f"routing.routes[{index}]",
                )
            )
    limits = data.get("limits", {})
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            problems.append(
                Problem(
                    f"unknown limit `{name}`; expected one of: {', '.join(LIMIT_NAMES)}",
                    path=f"limits.{name}",
                )
            )
        elif (problem := limit_problem(name, value)) is not None:
            problems.append(Problem(problem, path=f"limits.{name}"))
    if problems:
        raise ValidationError(problems, what="configuration")
    return Config(
        engine=data.get("engine", {}),
        store=data.get("store", {}),
        server=data.get("server", {}),
        executors=executors,
        routing=routing,
        limits=limits,
    )
