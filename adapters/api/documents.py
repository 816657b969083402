"""Query documents parsed and validated once: each distinct (query text, operation name) is parsed, checked
against the schema's rules plus the depth and cost limits, and kept in a bounded LRU. A dashboard or a
client library sends the same few documents over and over, so the per-request work is the execution only.

A refused document (a syntax error, a validation or limit error) is cached too: its errors do not change."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    Visitor,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
    visit,
)

from adapters.api.limits import CostAndDepthLimit

CACHED_DOCUMENTS = 512
CACHED_TEXT_LIMIT = 64 * 1024
"""Longer query texts are prepared on every request rather than kept: the cache stays small whatever is sent."""


@dataclass(eq=False)
class Prepared:
    document: DocumentNode
    operation: OperationDefinitionNode
    plans: dict[Any, Any] | None = field(default_factory=dict)
    """Completion plans of the executor (adapters.api.executor), shared by every execution of this document;
    None when a directive (@skip/@include) may make the selection depend on the variables."""


class _HasDirective(Visitor):
    found = False

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        self.found = True


class Documents:
    def __init__(self, schema: GraphQLSchema, size: int = CACHED_DOCUMENTS) -> None:
        self.schema = schema
        self.size = size
        self._cache: OrderedDict[tuple[str, str | None], Prepared | list[GraphQLError]] = OrderedDict()

    def prepare(self, query: str, operation_name: str | None) -> Prepared | list[GraphQLError]:
        key = (query, operation_name)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        prepared = self._prepare(query, operation_name)
        if len(query) <= CACHED_TEXT_LIMIT:
            self._cache[key] = prepared
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return prepared

    def _prepare(self, query: str, operation_name: str | None) -> Prepared | list[GraphQLError]:
        try:
            document = parse(query)
        except GraphQLError as exc:
            return [exc]
        errors = validate(self.schema, document, [*specified_rules, CostAndDepthLimit])
        if errors:
            return errors
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            message = f"unknown operation named {operation_name!r}" if operation_name else \
                "the document holds several operations: name the one to run with operationName"  # fmt: skip
            return [GraphQLError(message)]
        directives = _HasDirective()
        visit(document, directives)
        return Prepared(document, operation, None if directives.found else {})
