"""workflow: run another workflow as a child job, node inputs mapped to its inputs by name."""

from __future__ import annotations

from collections.abc import Mapping

from engine.compile.models import FlowNode
from engine.protocols import CompiledExpression, NodeCall, Outcome, RunChild
from nodes._base import BaseKind


class WorkflowKind(BaseKind):
    type_name = "workflow"

    def check(self, node: FlowNode) -> list[tuple[str, str]]:
        if not node.workflow_id:
            return [("a `workflow` node needs a `workflowId`", "workflowId")]
        return []

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        node: FlowNode = call.node
        return RunChild(str(node.workflow_id))
