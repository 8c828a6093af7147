"""Pydantic models of Scenario's workflow and job documents.

The models are inert data: camelCase on the wire, unknown fields kept (`extra="allow"`) and
written back unchanged by `to_wire()`. Their only methods derive values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from engine.protocols import JobStatus, NodeStatus

NODE_TYPES: tuple[str, ...] = (
    "custom-model",
    "model",
    "remove-background",
    "generate-prompt",
    "workflow",
    "logic",
    "transform",
    "list",
    "for-each",
    "user-approval",
    "user-selection",
)
MODEL_NODE_TYPES = frozenset({"custom-model", "model", "remove-background", "generate-prompt"})
INPUT_TYPES: tuple[str, ...] = (
    "boolean",
    "number",
    "integer",  # seen on live workflows: a whole number
    "string",
    "file",
    "file_array",
    "string_array",
    "number_array",
    "model",
    "model_array",
    "inputs_array",
)


def input_type_of(value: Any) -> str | None:
    """The input type a literal value has (None for an object, which no input type holds)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return "number_array"
        return "string_array"
    return None


class WireModel(BaseModel):
    """Base: camelCase aliases, unknown fields kept, round-trip through `to_wire()`."""

    # Validators and serializers are built when a model is first used, not when its class is
    # made: a run validates a `Workflow` (one build, its nested models inlined) and never
    # builds the job models; building all of them at import was most of this module's cost.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        protected_namespaces=(),
        defer_build=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict, with only the fields the document set (unknown ones included)."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


class Ref(WireModel):
    """Where an input takes its value: another node's output, a run input, or merged branches."""

    node: str | None = None
    name: str | None = None
    equal: Any = None
    conditional: list[str] | None = None


class RequiredConditional(WireModel):
    values: dict[str, list[Any]] = Field(default_factory=dict)
    operator: Literal["and", "or"] = "and"


class RequiredRules(WireModel):
    """When an input must be given. By default it is not required."""

    always: bool | None = None
    if_defined: dict[str, Any] | None = None
    if_not_defined: dict[str, Any] | None = None
    conditional: RequiredConditional | None = None
    conditional_values: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_a_bare_bool(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError(
                f'`required` is an object of rules: write {{"always": {str(data).lower()}}}'
            )
        return data


class NodeInput(WireModel):
    """An input of a node, or of the workflow itself (the run contract)."""

    name: str
    type: str
    value: Any = None
    default: Any = None
    ref: Ref | None = None
    required: RequiredRules | None = None
    min: float | None = None
    max: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    allowed_values: list[Any] | None = None
    items: list[list[NodeInput]] | None = None


class LogicCase(WireModel):
    condition: str
    value: Any = None


class Logic(WireModel):
    cases: list[LogicCase] | None = None
    default: Any = None
    transform: str | None = None


class FlowNode(WireModel):
    """One node of a workflow's flow (and, in a job, its runtime state)."""

    id: str
    type: str
    inputs: list[NodeInput] | None = None
    depends_on: list[str] | None = None
    logic: Logic | None = None
    logic_type: str | None = None
    model_id: str | None = None
    workflow_id: str | None = None
    items: list[Any] | None = None
    count: int | None = None
    loop_body_node_ids: list[str] | None = None
    include_outputs_in_workflow_job: bool | None = None
    # job-only fields
    status: NodeStatus | None = None
    iteration_index: int | None = None
    loop_node_id: str | None = None
    job_id: str | None = None
    output: Any = None
    assets: list[dict[str, Any]] | None = None

    def wire(self) -> dict[str, Any]:
        """The node as JSON: the dict it was read from (unknown fields and all, never changed),
        else a fresh dump."""
        raw = self.__dict__.get("_read_from")
        return raw if raw is not None else self.to_wire()


class Workflow(WireModel):
    """A Scenario workflow: the run contract (`inputs`) and the graph (`flow`)."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    status: Literal["draft", "ready", "deleted"] | None = None
    privacy: str | None = None
    tag_set: list[str] | None = None
    inputs: list[NodeInput] = Field(default_factory=list)
    flow: list[FlowNode] = Field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """The document as it was read (a copy of its top level: integers stay integers, unknown
        fields are kept), else a fresh dump."""
        raw = self.__dict__.get("_read_from")
        return dict(raw) if raw is not None else super().to_wire()


class StatusChange(WireModel):
    date: str
    status: JobStatus


class JobMetadata(WireModel):
    input: dict[str, Any] = Field(default_factory=dict)
    flow: list[dict[str, Any]] = Field(default_factory=list)
    asset_ids: list[str] = Field(default_factory=list)
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    workflow_id: str | None = None
    workflow_job_id: str | None = None


class Job(WireModel):
    """A workflow job as Scenario's API returns it."""

    job_id: str
    job_type: Literal["workflow"] = "workflow"
    status: JobStatus
    progress: float
    created_at: str
    updated_at: str
    status_history: list[StatusChange] = Field(default_factory=list)
    metadata: JobMetadata = Field(default_factory=JobMetadata)
