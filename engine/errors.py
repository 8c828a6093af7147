"""The flowgraph error hierarchy, split by phase.

Every message names the offending thing in backticks and, where it can, says how to fix it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


class FlowgraphError(Exception):
    """Root of every error flowgraph raises on purpose."""


class MissingExtraError(FlowgraphError, ImportError):
    """A feature needs a package of an optional extra that is not installed."""

    def __init__(self, module: str, *, extra: str, purpose: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{purpose} needs the `{module}` package, which is not installed; "
            f"install it with: pip install 'flowgraph[{extra}]'"
        )


def import_extra(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import `module`, which comes with the optional extra `extra`, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is not None and module.split(".")[0] != error.name.split(".")[0]:
            raise  # the package is there, but something it needs is broken: not ours to hide
        raise MissingExtraError(module, extra=extra, purpose=purpose) from None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document, a flow or a set of run inputs."""

    message: str
    path: str = ""
    node_id: str | None = None

    def __str__(self) -> str:
        where = self.path or (f"node `{self.node_id}`" if self.node_id else "")
        return f"{where}: {self.message}" if where else self.message


class ValidationError(FlowgraphError, ValueError):
    """A document, flow or set of run inputs with one or more problems, all collected."""

    def __init__(self, problems: list[Problem], *, what: str = "workflow") -> None:
        self.problems = list(problems)
        self.what = what
        count = len(self.problems)
        header = f"{self.headline} ({count} problem{'s' if count != 1 else ''})"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))

    @property
    def headline(self) -> str:
        """`workflow is invalid`, `run inputs are invalid`."""
        return f"{self.what} {'are' if self.what.endswith('s') else 'is'} invalid"


class DocumentError(ValidationError):
    """The file could not be read as a workflow document (JSON syntax, shape, schema)."""

    def __init__(self, problems: list[Problem], *, what: str = "document") -> None:
        super().__init__(problems, what=what)


class InputError(ValidationError):
    """Run inputs that do not satisfy the workflow's `inputs` contract."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems, what="run inputs")


class CycleError(ValidationError):
    """The flow's dependency graph has a cycle; `cycle` lists its node ids in order."""

    def __init__(self, cycle: list[str], problems: list[Problem]) -> None:
        self.cycle = cycle
        super().__init__(problems, what="flow")


class NodeExecutionError(FlowgraphError, RuntimeError):
    """A node failed while running: an executor error, an expression error, a bad value."""

    def __init__(self, node_id: str, message: str) -> None:
        self.node_id = node_id
        self.cause_message = message
        super().__init__(f"node `{node_id}`: {message}")


class ExpressionSyntaxError(FlowgraphError, ValueError):
    """An expression that does not parse; the message carries the position."""


class ExpressionEvaluationError(FlowgraphError, RuntimeError):
    """An expression that parsed but failed on the values it was given."""


class TransientExecutorError(FlowgraphError, RuntimeError):
    """An executor error worth retrying (rate limit, network blip); retried with backoff."""


class DecisionError(FlowgraphError, ValueError):
    """A gate decision that cannot be applied; the job is left unchanged."""


class UnknownJobError(FlowgraphError, LookupError):
    """No job with the given id is known to the engine or its store."""


class StoreError(FlowgraphError, RuntimeError):
    """The store cannot be opened, read or written (a missing directory, a full disk, ...)."""


def first_cause(error: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups: what actually went wrong."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def internal_message(error: BaseException) -> str:
    """An unexpected error, said plainly: its type and message (a MemoryError, what it means)."""
    if isinstance(error, MemoryError):
        return "out of memory (MemoryError); the job was too large for this machine"
    text = str(error).strip()
    return f"internal error: {type(error).__name__}{': ' + text if text else ''}"
