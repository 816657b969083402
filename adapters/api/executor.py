"""Execution of a prepared document with graphql-core, and the response bytes (errors masked, orjson).

Why a custom executor: an orders page of 100 rows is ~1,000 fields, and graphql-core completes each one
through its general path (a resolve info, a path, the resolver wrapper, the type checks), ~5 ms of one core
per page. Most of a response is "plain": read-model attributes (strawberry fields without a resolver) of
leaf types, objects and lists of them. For those subtrees the executor compiles, once per field of a
prepared document, a completion plan (attribute reads and scalar coercions) and runs it instead. Resolvers,
arguments, abstract types and @defer/@stream keep the general path. When a plan meets anything it does not
expect (a null in a non-null field, a value a scalar refuses, a wrong object type) it gives up on that value
and graphql-core completes it again, so errors and their paths are exactly graphql-core's."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import orjson
from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    execute,
    get_nullable_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from adapters.api.documents import Prepared
from adapters.api.services import ApiError

log = logging.getLogger("cse.api")
MASKED = "internal error (details in the server log)"
Plan = Callable[[Any], Any]


class _GiveUp(Exception):
    """A plan met a value it does not handle: graphql-core completes that value instead."""


def _non_null(inner: Plan) -> Plan:
    def complete(value: Any) -> Any:
        out = inner(value)
        if out is None:
            raise _GiveUp
        return out

    return complete


def _list(inner: Plan) -> Plan:
    def complete(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise _GiveUp
        return [inner(v) for v in value]

    return complete


def _leaf(coerce: Callable[[Any], Any]) -> Plan:
    def complete(value: Any) -> Any:
        if value is None:
            return None
        out = coerce(value)
        if out is None or out is Undefined:
            raise _GiveUp
        return out

    return complete


class _Field(NamedTuple):
    key: str
    name: str
    """The attribute holding the value (strawberry's python name)."""
    leaf: Callable[[Any], Any] | None
    """A leaf's output coercion (None: `sub` completes the value)."""
    required: bool
    sub: Plan | None
    verbatim: type | None
    """A Python type the leaf's coercion returns unchanged (str for String and ID): skipped."""


def _object(type_: GraphQLObjectType, fields: list[_Field]) -> Plan:
    """Leaves inline (one coercion call each, none for a str in a String field), other fields by their plan."""
    is_type_of = type_.is_type_of

    def complete(value: Any) -> Any:
        if value is None:
            return None
        if is_type_of is not None and is_type_of(value, None) is not True:
            raise _GiveUp
        out = {}
        for key, name, leaf, required, sub, verbatim in fields:
            v = getattr(value, name)
            if leaf is None:
                out[key] = sub(v)  # type: ignore[misc]
            elif v is None:
                if required:
                    raise _GiveUp
                out[key] = None
            elif type(v) is verbatim:
                out[key] = v
            else:
                c = leaf(v)
                if c is None or c is Undefined:
                    raise _GiveUp
                out[key] = c
        return out

    return complete


class PlannedExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context (resolvers get strawberry's `Info`) with compiled plain subtrees."""

    def __init__(self, *args: Any, plans: dict[Any, Plan | None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans: dict[Any, Plan | None] = {} if plans is None else plans

    def complete_value(self, return_type: GraphQLOutputType, field_details_list: Any, info: Any, path: Any,
                       result: Any, position_context: Any) -> Any:  # fmt: skip
        key = (return_type, tuple(id(d.node) for d in field_details_list))
        try:
            plan = self.plans[key]
        except KeyError:
            plan = self.plans[key] = self._plan(return_type, field_details_list)
        if plan is not None and not isinstance(result, Exception):
            try:
                return plan(result)
            except Exception:  # graphql-core below reports it, located, as it would have
                pass
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def build_response(self, data: dict[str, Any] | None) -> Any:
        result = super().build_response(data)
        if isinstance(result, ExecutionResult):  # complete: nothing runs on this executor any more
            # graphql-core's resolve-info helpers hold bound methods of the executor: a reference cycle that
            # left every request's executor, context and dataloaders (39 objects) to the cyclic collector,
            # whose full collections then had that much more to walk
            self.async_helpers = None  # type: ignore[assignment]
        return result

    def _plan(self, type_: GraphQLOutputType, field_details_list: Any) -> Plan | None:
        if isinstance(type_, GraphQLNonNull):
            inner = self._plan(type_.of_type, field_details_list)
            return None if inner is None else _non_null(inner)
        if isinstance(type_, GraphQLList):
            inner = self._plan(type_.of_type, field_details_list)
            return None if inner is None else _list(inner)
        if is_leaf_type(type_):
            return _leaf(type_.coerce_output_value)  # type: ignore[union-attr]
        if not isinstance(type_, GraphQLObjectType):
            return None  # interfaces and unions: the general path resolves the runtime type
        grouped, defer_usages, *_ = self.collect_subfields(type_, field_details_list)
        if defer_usages:
            return None
        fields = []
        for key, details in grouped.items():
            node = details[0].node
            if node.name.value == "__typename":
                return None  # rare enough to leave to the general path
            definition = self.schema.get_field(type_, node.name.value)
            strawberry_field = (
                (definition.extensions or {}).get("strawberry-definition") if definition else None
            )
            plain = definition is not None and getattr(definition.resolve, "_is_default", False) and \
                not definition.args and not node.arguments and strawberry_field is not None and \
                strawberry_field.default_resolver is getattr and \
                all(d.fragment_variable_values is None and d.defer_usage is None for d in details)  # fmt: skip
            if not plain:
                return None
            name = strawberry_field.python_name  # type: ignore[union-attr]
            required = isinstance(definition.type, GraphQLNonNull)  # type: ignore[union-attr]
            named = get_nullable_type(definition.type)  # type: ignore[union-attr]
            if is_leaf_type(named):
                verbatim = str if named is GraphQLString or named is GraphQLID else None
                fields.append(_Field(key, name, named.coerce_output_value, required, None, verbatim))
                continue
            sub = self._plan(definition.type, details)  # type: ignore[union-attr]
            if sub is None:
                return None
            fields.append(_Field(key, name, None, required, sub, None))
        return _object(type_, fields)


def run(schema: GraphQLSchema, prepared: Prepared, variables: dict[str, Any] | None, context: Any,
        root: Any = None) -> ExecutionResult | Awaitable[ExecutionResult]:  # fmt: skip
    """Execute; awaitable when a resolver is asynchronous."""
    return execute(schema, prepared.document, root_value=root, context_value=context, variable_values=variables,
                   operation_name=prepared.operation.name.value if prepared.operation.name else None,
                   executor_class=PlannedExecutor, is_awaitable=optimized_is_awaitable,
                   plans=prepared.plans)  # fmt: skip


def internal(error: GraphQLError) -> bool:
    """An error to mask: raised by our code or a library, not a refusal (ApiError) or a GraphQL error."""
    original = error.original_error
    return original is not None and not isinstance(original, ApiError | GraphQLError)


def masked(errors: list[GraphQLError]) -> list[dict[str, Any]]:
    """Errors as the client sees them: refusals and request errors as they are, anything else (a bug, a
    database failure: its text may name a host or a DSN) replaced by one sentence, its detail logged here."""
    out = []
    for error in errors:
        if internal(error):
            log.error("internal error at %s", error.path, exc_info=error.original_error)
            error = GraphQLError(MASKED, error.nodes, error.source, error.positions, error.path)
        out.append(error.formatted)
    return out


def response(data: Any, errors: list[GraphQLError] | None) -> bytes:
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = masked(errors)
    return orjson.dumps(body)
