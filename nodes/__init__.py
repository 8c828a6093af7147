"""Node kinds: one module per node type, found by the engine through this registry."""

from __future__ import annotations

from engine.protocols import NodeKind
from nodes.for_each import ForEachKind
from nodes.list import ListKind
from nodes.logic import LogicKind
from nodes.model import ModelKind
from nodes.transform import TransformKind
from nodes.user_approval import UserApprovalKind
from nodes.user_selection import UserSelectionKind
from nodes.workflow import WorkflowKind

NodeKindRegistry = dict[str, NodeKind]

_REGISTRY: NodeKindRegistry = {}


def register(kind: NodeKind, *, replace: bool = False) -> None:
    """Make `kind` serve nodes whose `type` is `kind.type_name`."""
    if kind.type_name in _REGISTRY and not replace:
        raise ValueError(
            f"node type `{kind.type_name}` already has a kind; pass replace=True to override it"
        )
    _REGISTRY[kind.type_name] = kind


def default_registry() -> NodeKindRegistry:
    """A copy of the registry: every built-in node type plus whatever was registered."""
    return dict(_REGISTRY)


for _kind in (
    LogicKind(),
    TransformKind(),
    ListKind(),
    ForEachKind(),
    UserApprovalKind(),
    UserSelectionKind(),
    WorkflowKind(),
    *(
        ModelKind(name)
        for name in ("custom-model", "model", "remove-background", "generate-prompt")
    ),
):
    register(_kind)

__all__ = ["NodeKindRegistry", "default_registry", "register"]
