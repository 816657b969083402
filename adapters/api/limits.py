"""Query depth and cost limits, as one graphql-core validation rule (used on HTTP and on the websocket).

Cost: every field costs 1, times the page size of each list above it (`first`, or `last` for series; a
variable counts as the largest page allowed). A query over the limit is refused before it runs."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

MAX_DEPTH = 10
MAX_COST = 10_000
MAX_PAGE = 500
DEFAULT_PAGE = 50


def _page(field: FieldNode) -> int:
    for arg in field.arguments or ():
        if arg.name.value in ("first", "last"):
            return int(arg.value.value) if isinstance(arg.value, IntValueNode) else MAX_PAGE
    return 1


class CostAndDepthLimit(ValidationRule):
    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.fragments: dict[str, FragmentDefinitionNode] = {}

    def enter_document(self, node: Any, *_: Any) -> None:
        self.fragments = {d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)}

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        depth, cost = self._measure(node.selection_set, 1, 1, set())
        name = node.name.value if node.name else "the operation"
        if depth > MAX_DEPTH:
            self.report_error(GraphQLError(f"{name} is {depth} levels deep; the limit is {MAX_DEPTH}", node))
        elif cost > MAX_COST:
            self.report_error(GraphQLError(f"{name} would cost {cost}; the limit is {MAX_COST} (ask for smaller"
                                           " pages)", node))  # fmt: skip

    def _measure(self, selections: SelectionSetNode | None, depth: int, weight: int,
                 seen: set[str]) -> tuple[int, int]:  # fmt: skip
        if selections is None:
            return depth - 1, 0
        deepest, cost = depth, 0
        for sel in selections.selections:
            if isinstance(sel, FieldNode):
                w = weight * _page(sel)
                d, c = self._measure(sel.selection_set, depth + 1, w, seen)
                deepest, cost = max(deepest, d), cost + weight + c
            else:
                sub = getattr(sel, "selection_set", None)
                name = getattr(getattr(sel, "name", None), "value", None)
                if name is not None:
                    if name in seen or name not in self.fragments:
                        continue  # cycles are refused by graphql-core's own rules
                    sub = self.fragments[name].selection_set
                    seen = seen | {name}
                d, c = self._measure(sub, depth, weight, seen)
                deepest, cost = max(deepest, d), cost + c
        return deepest, cost
