"""A tiny, safe evaluator for form conditions such as `required_if`.

Conditions come from BPMN files that designers upload, so they are untrusted: the source is
parsed with `ast` and only a whitelist of node types is accepted; evaluation walks the tree
itself and never calls eval/exec or any attribute, so nothing outside the given values is
reachable.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

MAX_SOURCE_LENGTH = 1000
"""Longer conditions are rejected: they are surely mistakes, and deep nesting can exhaust
the parser's recursion limit."""

# Any: the operands are whatever the submission held; a TypeError means "does not hold".
_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], object]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda left, right: operator.contains(cast(Container[object], right), left),
    ast.NotIn: lambda left, right: not operator.contains(cast(Container[object], right), left),
}

_CONSTANT_TYPES = (str, int, float, bool, type(None))

# Friendly names for the constructs people most often try, for the error message.
_CONSTRUCT_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Call: "a function call",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.BinOp: "arithmetic",
    ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment expression",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.JoinedStr: "an f-string",
    ast.Starred: "a starred expression",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "a slice",
}

_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.USub: "-",
    ast.UAdd: "+",
    ast.Invert: "~",
}


class ExpressionError(ValueError):
    """The condition's source is not an allowed expression."""


def _quoted(source: str) -> str:
    # Messages end up in lint reports and API errors; a 1000-character echo helps nobody.
    return repr(source if len(source) <= 80 else source[:77] + "...")


def _describe(node: ast.AST) -> str:
    name = _CONSTRUCT_NAMES.get(type(node), type(node).__name__)
    return f"{name} ({type(node).__name__})"


def _symbol(op: ast.AST) -> str:
    return repr(_OPERATOR_SYMBOLS.get(type(op), type(op).__name__))


def _reject(node: ast.AST, source: str, why: str | None = None) -> ExpressionError:
    reason = why or f"{_describe(node)} is not allowed"
    return ExpressionError(f"{reason} in condition {_quoted(source)}")


_NOT_CONSTANT: object = object()


def _constant_value(node: ast.expr) -> object:
    """The literal value of `node`, or _NOT_CONSTANT (None is a legitimate literal)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, _CONSTANT_TYPES):
        return node.value
    # Negative numbers parse as unary minus applied to a constant; allow exactly that.
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
    ):
        value = node.operand.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value
    return _NOT_CONSTANT


def _check_collection(node: ast.Tuple | ast.List, source: str) -> None:
    for element in node.elts:
        if _constant_value(element) is _NOT_CONSTANT:
            raise _reject(element, source, "lists and tuples may hold only constants")


def _check(node: ast.expr, source: str, names: set[str]) -> None:
    """Raise ExpressionError unless `node` uses only allowed constructs; collect names."""
    if _constant_value(node) is not _NOT_CONSTANT:
        return
    if isinstance(node, ast.Constant):
        kind = type(node.value).__name__
        raise _reject(node, source, f"constants of type {kind} are not allowed")
    if isinstance(node, ast.Name):
        # Dunder names are how sandbox escapes start; no field id needs one.
        if node.id.startswith("__"):
            raise _reject(node, source, f"the name {node.id!r} is not allowed")
        names.add(node.id)
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, source, names)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Not):
            raise _reject(node, source, f"the operator {_symbol(node.op)} is not allowed here")
        _check(node.operand, source, names)
        return
    if isinstance(node, ast.Compare):
        _check_compare(node, source, names)
        return
    if isinstance(node, ast.Tuple | ast.List):
        raise _reject(node, source, "lists and tuples are allowed only after 'in'")
    raise _reject(node, source)


def _check_compare(node: ast.Compare, source: str, names: set[str]) -> None:
    _check(node.left, source, names)
    for op, right in zip(node.ops, node.comparators, strict=True):
        if type(op) not in _COMPARISONS:
            raise _reject(node, source, f"the comparison {_symbol(op)} is not allowed")
        # A literal list/tuple only makes sense as the haystack of `in`.
        if isinstance(right, ast.Tuple | ast.List):
            if not isinstance(op, ast.In | ast.NotIn):
                raise _reject(right, source, "lists and tuples are allowed only after 'in'")
            _check_collection(right, source)
        else:
            _check(right, source, names)


def _evaluate(node: ast.expr, values: Mapping[str, object]) -> object:
    constant = _constant_value(node)
    if constant is not _NOT_CONSTANT:
        return constant
    if isinstance(node, ast.Name):
        return values.get(node.id)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_truth(value, values) for value in node.values)
        return any(_truth(value, values) for value in node.values)
    if isinstance(node, ast.UnaryOp):
        return not _truth(node.operand, values)
    if isinstance(node, ast.Compare):
        return _evaluate_compare(node, values)
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_evaluate(element, values) for element in node.elts)
    # compile_condition vetted the tree; reaching this is a programming error.
    raise AssertionError(f"unexpected node {type(node).__name__}")


def _truth(node: ast.expr, values: Mapping[str, object]) -> bool:
    return bool(_evaluate(node, values))


def _evaluate_compare(node: ast.Compare, values: Mapping[str, object]) -> bool:
    left = _evaluate(node.left, values)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _evaluate(right_node, values)
        try:
            holds = bool(_COMPARISONS[type(op)](left, right))
        except TypeError:
            # e.g. a missing (None) number compared with `>`: the condition cannot hold.
            return False
        if not holds:
            return False
        left = right
    return True


@dataclass(frozen=True)
class Condition:
    """A vetted condition; equal when the source is equal."""

    source: str
    names: frozenset[str]
    tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, object]) -> bool:
        """Evaluate over `values`; names that are missing count as None."""
        return _truth(self.tree, values)


def compile_condition(source: str) -> Condition:
    """Parse and vet a condition, raising ExpressionError naming the first disallowed construct."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("a condition must be a non-empty expression")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"a condition may be at most {MAX_SOURCE_LENGTH} characters long")
    try:
        # Leading whitespace is an IndentationError in eval mode though harmless; drop it.
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(
            f"condition {_quoted(source)} is not valid Python: {error.msg}"
        ) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"condition {_quoted(source)} is nested too deeply") from None
    names: set[str] = set()
    _check(tree.body, source, names)
    return Condition(source=source, names=frozenset(names), tree=tree.body)
