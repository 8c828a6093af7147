"""Request bodies and response envelopes of the Workflows API (they shape the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WorkflowCreate(Body):
    name: str
    description: str


class WorkflowUpdate(Body):
    name: str | None = None
    description: str | None = None
    shortDescription: str | None = None
    status: Literal["draft", "ready"] | None = None
    privacy: Literal["private", "public", "unlisted"] | None = None
    inputs: list[dict[str, Any]] | None = None
    flow: list[dict[str, Any]] | None = None
    tagSet: list[str] | None = None
    outputAssetKinds: list[str] | None = None
    before: str | None = None
    after: str | None = None
    thumbnail: str | None = None
    isLocked: bool | None = None
    bypassLock: bool | None = None
    editorInfo: dict[str, Any] | None = None


# a node id, or a path into sub-workflows (`sub#1/inner/review`): far longer is no node's
NodeId = Annotated[str, Field(min_length=1, max_length=1000)]


class UserApproval(Body):
    nodeId: NodeId
    workflowJobId: str
    action: Literal["approve", "reject"] = "approve"


class UserSelection(Body):
    action: Literal["select", "reject"]
    nodeId: NodeId
    workflowJobId: str
    selectedIndices: list[int] | None = None


class JobAction(Body):
    action: Literal["cancel"] = "cancel"  # optional in the SDK: cancel is the only action


class WorkflowOut(Body):
    id: str
    authorId: str
    ownerId: str
    createdAt: str
    updatedAt: str
    name: str
    description: str
    shortDescription: str
    status: Literal["draft", "ready", "deleted"]
    privacy: Literal["private", "public", "unlisted"]
    tagSet: list[str]
    inputs: list[dict[str, Any]]
    flow: list[dict[str, Any]] = Field(default_factory=list)
    editorInfo: dict[str, Any] = Field(default_factory=dict)
    hasFlow: bool


class JobOut(Body):
    jobId: str
    jobType: Literal["workflow"]
    status: Literal[
        "pending",
        "queued",
        "warming-up",
        "in-progress",
        "finalizing",
        "success",
        "failure",
        "canceled",
    ]
    progress: float
    createdAt: str
    updatedAt: str
    statusHistory: list[dict[str, Any]]
    metadata: dict[str, Any]


class WorkflowEnvelope(BaseModel):
    workflow: WorkflowOut


class WorkflowList(BaseModel):
    workflows: list[WorkflowOut]
    nextPaginationToken: str | None = None


class TagList(BaseModel):
    tags: list[str]


class JobEnvelope(BaseModel):
    job: JobOut


class RunResponse(BaseModel):
    job: JobOut
    workflow: WorkflowOut


class DryRunResponse(BaseModel):
    creativeUnitsCost: float
    creativeUnitsDiscount: float
    job: dict[str, Any]


class JobList(BaseModel):
    jobs: list[JobOut]
    nextPaginationToken: str | None = None


class Deleted(BaseModel):
    success: bool


class ErrorEnvelope(BaseModel):
    statusCode: int
    error: str
    message: str
