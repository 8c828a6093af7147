"""Contracts between the engine's parts: Protocols and type aliases only.

This module imports nothing else of the engine, so node kinds, executors and stores can depend
on it without pulling in the runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:  # for annotations only: this module imports nothing of the engine at run time
    from engine.deflated import DeflatedFile
    from engine.run.children import ChildGate

JSON: TypeAlias = Any
Outputs: TypeAlias = dict[str, JSON]


class NodeStatus(StrEnum):
    """Status of one node of a job's flow."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_NODE_STATUSES


TERMINAL_NODE_STATUSES = frozenset(
    {NodeStatus.SUCCESS, NodeStatus.FAILURE, NodeStatus.SKIPPED, NodeStatus.REJECTED}
)


class JobStatus(StrEnum):
    """Status of a workflow job."""

    PENDING = "pending"
    QUEUED = "queued"
    WARMING_UP = "warming-up"
    IN_PROGRESS = "in-progress"
    FINALIZING = "finalizing"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELED = "canceled"


TERMINAL_JOB = frozenset({JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.CANCELED})


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset produced by a model node."""

    asset_id: str
    url: str
    kind: str = "image"

    def to_json(self) -> dict[str, str]:
        return {"assetId": self.asset_id, "url": self.url, "kind": self.kind}


@dataclass(slots=True)
class NodeCall:
    """What a node kind or an executor is given when a node instance starts."""

    job_id: str
    node_id: str
    template_id: str
    node_type: str
    model_id: str | None
    inputs: dict[str, JSON]
    node: Any  # the flow node as compiled (engine.compile.models.FlowNode)
    iteration_index: int | None = None
    attempt: int = 1
    # transient errors retried within this attempt (the idempotency key stays the same, so a
    # remote service that honours it does not start the work twice)
    retry: int = 0
    seed: int = 0
    # the job a remote service runs for this call, as the executor said when it started it
    # (`remote_started`); set on the call again when a job resumes after a crash
    remote_job_id: str | None = None
    on_remote_job: Callable[[str, str], None] | None = None
    on_progress: Callable[[str, float], None] | None = None

    @property
    def idempotency_key(self) -> str:
        """Stable across a restart: the same job, node and attempt give the same key."""
        return f"{self.job_id}:{self.node_id}:{self.attempt}"

    def remote_started(self, remote_job_id: str) -> None:
        """Say which remote job now runs this call, before waiting for it: the engine records
        it, so that the job resumed after a crash hands it back (`remote_job_id`) for the
        executor to poll rather than start another."""
        self.remote_job_id = remote_job_id
        if self.on_remote_job is not None:
            self.on_remote_job(self.node_id, remote_job_id)

    def report_progress(self, fraction: float) -> None:
        """Say how far the remote job has come (0 to 1), for progress displays."""
        if self.on_progress is not None:
            self.on_progress(self.node_id, fraction)


# ----- what a node kind answers when a node starts -------------------------------------------


@dataclass(slots=True)
class Completed:
    """The node finished; `outputs` holds its named outputs (`output` is the primary one).

    `details` carries the decisive values (the condition and the case chosen) for explanations.
    """

    outputs: Outputs | AssetOutputs
    assets: Sequence[Asset] = field(default_factory=list)
    details: dict[str, JSON] | None = None


class AssetOutputs(Mapping[str, JSON]):
    """The outputs of a node that answered assets alone: `output`, the assets' ids, listed
    when read. A dict and a list of ids kept per node would cost about 250 bytes each of the
    hundreds of thousands of model nodes a large fan-out makes; this costs 48."""

    __slots__ = ("assets",)

    def __init__(self, assets: Sequence[Asset]) -> None:
        self.assets = assets

    def __getitem__(self, key: str) -> JSON:
        if key == "output":
            return self._ids()
        raise KeyError(key)

    def get(self, key: str, default: JSON = None) -> JSON:
        return self._ids() if key == "output" else default

    def _ids(self) -> list[str]:
        assets = self.assets
        if len(assets) == 1:  # the usual answer: no comprehension made per read
            return [assets[0].asset_id]
        return [asset.asset_id for asset in assets]

    def __contains__(self, key: object) -> bool:
        return key == "output"

    def __iter__(self) -> Iterator[str]:
        yield "output"

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"AssetOutputs({dict(self)!r})"


@dataclass(slots=True)
class Failed:
    """The node failed with a message naming the cause."""

    message: str


@dataclass(slots=True)
class Expand:
    """A for-each node starts its iterations over `items` (one clone set per item)."""

    items: list[JSON]


@dataclass(slots=True)
class Wait:
    """A gate waits for a human decision; `items` are frozen candidates for a selection."""

    items: list[JSON] | None = None


@dataclass(slots=True)
class Delegate:
    """A model-like node is handed to an executor."""


@dataclass(slots=True)
class RunChild:
    """A workflow node runs another workflow as a child job."""

    workflow_id: str


Outcome: TypeAlias = Completed | Failed | Expand | Wait | Delegate | RunChild


@dataclass(slots=True)
class ChildWaits:
    """A workflow node's child job waits at `gates`: the node waits with it (still
    `processing`) until a decision reaches the child."""

    job_id: str
    gates: tuple[ChildGate, ...]


@dataclass(slots=True)
class ChildRejected:
    """A workflow node's child job was canceled by a reject at `gate` (its path from the
    node's job): the node is `rejected` and its job canceled, as for a gate of its own."""

    gate: str


# How a delegated call ends: an executor's result, or what a workflow node's child job did.
CallResult: TypeAlias = Completed | Failed | ChildWaits | ChildRejected


class CompiledExpression(Protocol):
    """An expression compiled once per run (CEL or a jinja2 template)."""

    source: str

    def evaluate(self, variables: Mapping[str, JSON]) -> JSON: ...


@dataclass(slots=True)
class Reject:
    """A gate decision that rejects: the node ends `rejected` and the job is canceled."""


class NodeKind(Protocol):
    """How one node type behaves when its inputs have resolved.

    `start` is synchronous and cheap: control nodes compute in place, model-like nodes answer
    `Delegate()` and the runner hands them to an executor.
    """

    type_name: str

    def check(self, node: Any) -> list[tuple[str, str]]:
        """Static problems of a node of this type, as (message, path below the node) pairs."""
        ...

    def expressions(self, node: Any) -> dict[str, tuple[str, str]]:
        """Expressions to compile once per run: key -> (source, path below the node)."""
        ...

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        """Decide what happens now that the node's inputs are resolved."""
        ...


class GateKind(NodeKind, Protocol):
    """A node kind that waits for a human decision."""

    def decide(self, node: Any, items: list[JSON] | None, decision: JSON) -> Completed | Reject:
        """Apply a decision, or raise `DecisionError` naming the rule it breaks."""
        ...


# ----- executors ------------------------------------------------------------------------------


@dataclass(slots=True)
class ExecutorResult:
    """What an executor returns for one model call."""

    assets: list[Asset] = field(default_factory=list)
    outputs: Outputs = field(default_factory=dict)


@runtime_checkable
class Executor(Protocol):
    """Runs a model node: given the call, return assets and extra outputs, or raise.

    Raise `TransientExecutorError` for errors worth retrying; any other exception fails the node.
    """

    name: str

    async def run(self, call: NodeCall) -> ExecutorResult: ...


@runtime_checkable
class BatchExecutor(Executor, Protocol):
    """An executor that can answer many calls at once without waiting (the dry run with no
    latency): the runner hands it the calls a loop's iterations start together, in one step,
    instead of awaiting `run` once per call. A batch of a 100,000-iteration fan-out then costs
    no task switch, concurrency token or awaited call per iteration.

    `run_batch` returns one answer per call, in order: its result, or the exception `run`
    would have raised (a `TransientExecutorError` is retried through `run`, with the call
    policy's backoff). None means it cannot answer now (it would have to wait): each call then
    goes through `run`."""

    def run_batch(self, calls: Sequence[NodeCall]) -> list[ExecutorResult | Exception] | None: ...


@runtime_checkable
class PricingExecutor(Protocol):
    """An executor that can also say what a call would cost, in creative units, without
    running it (for `explain --cost` and the server's `dryRun`)."""

    async def estimate(self, call: NodeCall) -> float: ...


PythonModelFunction: TypeAlias = Callable[
    [NodeCall], "ExecutorResult | Mapping[str, Any] | Sequence[Any] | Awaitable[Any]"
]


# ----- events ---------------------------------------------------------------------------------


class Transition(NamedTuple):
    """One status change of a node (or of the job, when `node_id` is None).

    Immutable; a named tuple rather than a frozen dataclass, because a run makes two per node
    and a frozen dataclass takes four times as long to build (1.4 µs against 0.3 µs)."""

    job_id: str
    node_id: str | None
    template_id: str | None
    iteration_index: int | None
    from_status: str | None
    to_status: str
    reason: str | None
    at: str
    details: Mapping[str, JSON] | None = None


class EventSink(Protocol):
    """Receives every transition, in order, after it is recorded."""

    def __call__(self, transition: Transition) -> None: ...


# ----- persistence ----------------------------------------------------------------------------


@dataclass(slots=True)
class JobRecord:
    """A job as a store keeps it: what it runs, how, and its latest document."""

    job_id: str
    workflow_id: str | None
    workflow: dict[str, JSON]
    inputs: dict[str, JSON]
    options: dict[str, JSON]
    status: str
    created_at: str
    updated_at: str
    document: dict[str, JSON] | None = None
    parent_job_id: str | None = None


class OutcomeRecord(NamedTuple):
    """One outcome applied to a node, in order: enough to rebuild the job after a restart.

    `kind` is `completed`, `failed`, `expand`, `wait`, `call` (a delegated call started, with
    its attempt), `remote` (the remote job an executor started for that call), `answered` (a
    call started and completed in one step: its payload a list, see
    `engine.run.persistence.answered_record`), `child-rejected` (a workflow node whose child
    job was rejected at a gate), `decision`, `cancel` or `abort`. Immutable; a named tuple
    for the same reason as `Transition`.
    """

    node_id: str
    kind: str
    payload: Any  # a JSON object (dict), but for `answered`: a JSON array (list)


HEAD_LEAVES_OUT = ("flow", "editorInfo")


@dataclass(frozen=True, slots=True)
class WorkflowEntry:
    """What a listing of workflows filters and sorts on, kept beside the document: a listing
    costs the number of workflows, not their size."""

    workflow_id: str
    status: str | None
    privacy: str | None
    tags: tuple[str, ...]
    updated_at: str

    @classmethod
    def of(cls, workflow_id: str, document: dict[str, Any]) -> WorkflowEntry:
        tags = document.get("tagSet")
        return cls(
            workflow_id,
            _text_or_none(document.get("status")),
            _text_or_none(document.get("privacy")),
            tuple(str(t) for t in tags) if isinstance(tags, list) else (),
            str(document.get("updatedAt") or ""),
        )


def workflow_head(document: dict[str, Any]) -> dict[str, Any]:
    """A workflow without its flow and editor layout: what `full=false` lists."""
    return {k: v for k, v in document.items() if k not in HEAD_LEAVES_OUT}


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class EncodedDocument(Protocol):
    """A job document encoded outside memory (a large job's; see engine/run/spooled.py)."""

    size: int  # in bytes
    # the same document as a zlib stream, made as it was encoded for a store that keeps
    # large documents deflated (see engine/deflated.py), or None
    deflated: DeflatedFile | None

    def pieces(self) -> Iterator[bytes]:
        """The document a piece at a time, in order."""
        ...

    def read(self) -> bytes:
        """The whole document."""
        ...


class Store(Protocol):
    """Where workflows, jobs and each job's outcome and event logs live."""

    # Whether other processes read it (a file, a database server): a running job's document
    # is then written now and then, for them to see it progress. An in-memory store is read
    # only by its own process, which sees the live job.
    shared: bool
    # Whether it keeps large documents deflated (zlib): a large job's document is then
    # deflated in a thread of its own while it is encoded, and handed over as `deflated`.
    deflates_documents: bool

    def put_workflow(self, workflow_id: str, document: dict[str, JSON]) -> None: ...

    def get_workflow(self, workflow_id: str) -> dict[str, JSON] | None: ...

    def list_workflows(self) -> list[dict[str, JSON]]: ...

    def workflow_entries(self) -> list[WorkflowEntry]:
        """Every workflow's entry, in the order they were first stored."""
        ...

    def get_workflow_head(self, workflow_id: str) -> dict[str, JSON] | None:
        """The workflow without `flow` and `editorInfo` (see `workflow_head`)."""
        ...

    def delete_workflow(self, workflow_id: str) -> bool: ...

    def create_job(self, record: JobRecord) -> None: ...

    def record(
        self, job_id: str, outcomes: Sequence[OutcomeRecord], transitions: Sequence[Transition]
    ) -> None:
        """Append outcomes and transitions in one transaction."""
        ...

    def checkpoint(
        self, job_id: str, *, status: str, updated_at: str, document_json: bytes | EncodedDocument
    ) -> None:
        """Replace the job's status and latest document (given as UTF-8 JSON: in memory, or, for
        a large job, in a file read a piece at a time)."""
        ...

    def get_job(self, job_id: str, *, document: bool = True) -> JobRecord | None:
        """The job; without `document`, its latest document is neither read nor parsed
        (`document` None): the rest of the record, for a reader that rebuilds the job from its
        log, as a large job's document is most of what is stored of it."""
        ...

    def job_summary(self, job_id: str) -> JobRecord | None:
        """The job without its workflow and document (its status, its parent), as
        `list_jobs` gives it: nothing large is read."""
        ...

    def document_json(self, job_id: str) -> bytes | None:
        """The job's latest document as stored (UTF-8 JSON), without parsing it; None when
        there is no such job or it has no document yet."""
        ...

    def outcomes(self, job_id: str) -> list[OutcomeRecord]: ...

    def events(self, job_id: str) -> list[Transition]: ...

    def events_after(self, job_id: str, position: int) -> tuple[list[Transition], int]:
        """The transitions recorded from `position` on (0: all of them; else a position this
        method returned), and the position to read from next: a reader follows the log."""
        ...

    def list_jobs(
        self,
        *,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """Jobs newest first, without documents; returns the page and the next cursor."""
        ...

    def claim(self, job_id: str, owner: str, ttl: float) -> bool:
        """Take (or keep) the lease on a job for `ttl` seconds; False while another owner
        holds an unexpired lease. Only the holder runs the job."""
        ...

    def renew(self, owner: str, ttl: float) -> None:
        """Extend every lease `owner` holds by `ttl` seconds from now."""
        ...

    def release(self, job_id: str, owner: str) -> None:
        """Give the lease back (a no-op unless `owner` holds it)."""
        ...

    def orphans(self) -> list[str]:
        """Jobs whose lease expired: their server stopped without giving them back."""
        ...

    def remember_key(self, key: str, job_id: str) -> str:
        """Bind an idempotency key to `job_id` unless it is bound already; the job id the key
        is bound to now (atomic: of two servers binding one key, one wins)."""
        ...

    def forget_key(self, key: str, job_id: str) -> None:
        """Unbind a key from `job_id` (a run that failed to start); a no-op otherwise."""
        ...

    def bound_job(self, key: str) -> str | None:
        """The job id `key` is bound to, or None (nothing is bound)."""
        ...

    def close(self) -> None: ...
