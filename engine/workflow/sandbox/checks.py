"""Layer 1: the AST whitelist every script, condition and timer expression must pass."""

from __future__ import annotations

import ast
import functools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine.workflow.sandbox.limits import (
    MAX_EXPRESSION_CHARS,
    MAX_SCRIPT_CHARS,
    SCRIPT_FILENAME,
    Mode,
    SandboxViolation,
)

# --- layer 1: the AST whitelist -------------------------------------------------------------

SAFE_BUILTINS: Mapping[str, Any] = MappingProxyType(
    {
        "abs": abs,
        "all": all,
        "any": any,
        "bool": bool,
        "dict": dict,
        "divmod": divmod,
        "enumerate": enumerate,
        "float": float,
        "int": int,
        "isinstance": isinstance,
        "len": len,
        "list": list,
        "max": max,
        "min": min,
        "range": range,
        "reversed": reversed,
        "round": round,
        "set": set,
        "sorted": sorted,
        "str": str,
        "sum": sum,
        "tuple": tuple,
        "zip": zip,
    }
)
SAFE_BUILTIN_NAMES: frozenset[str] = frozenset(SAFE_BUILTINS)

# Every attribute a script may read, whatever the object: methods of str, list and dict
# that neither reach other objects nor format (str.format can walk attributes through its
# replacement fields: "{0.__class__}").  An allowlist, because harmless-looking public
# attributes lead out too: generator.gi_frame.f_back.f_globals, int.mro(), dict_keys.mapping.
ALLOWED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        # str
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "startswith",
        "endswith",
        "replace",
        "split",
        "rsplit",
        "join",
        "title",
        "capitalize",
        "casefold",
        "isdigit",
        "isalpha",
        "isalnum",
        "isspace",
        "zfill",
        "find",
        # list
        "append",
        "extend",
        "insert",
        "remove",
        "reverse",
        "sort",
        # list and str
        "count",
        "index",
        # list and dict
        "pop",
        "copy",
        "clear",
        # dict
        "get",
        "keys",
        "values",
        "items",
        "update",
        "setdefault",
    }
)

# Names refused even as plain values, so they are never one rebinding away from a call;
# none of them is in the child's builtins anyway (defence in depth).
FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "breakpoint",
        "compile",
        "delattr",
        "dir",
        "eval",
        "exec",
        "getattr",
        "globals",
        "hasattr",
        "help",
        "input",
        "locals",
        "memoryview",
        "object",
        "open",
        "setattr",
        "super",
        "type",
        "vars",
    }
)

# Syntax a script may use.  Anything else (import, def, lambda, class, global, nonlocal,
# try, raise, with, match, async, await, yield, annotations, ...) is refused: a
# whitelist, so syntax added by a future Python is refused until someone allows it.
#
# `while` is allowed: the guarantee that a script ends is the executor's timeout, not the
# syntax.  `for i in range(10**18)` or a nested comprehension runs just as long as
# `while True`, so refusing `while` would only break honest scripts.
_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Module,
    ast.Expression,
    # statements
    ast.Assign,
    ast.AugAssign,
    ast.Delete,
    ast.For,
    ast.While,
    ast.If,
    ast.Expr,
    ast.Pass,
    ast.Break,
    ast.Continue,
    ast.Assert,
    # expressions
    ast.BoolOp,
    ast.NamedExpr,
    ast.BinOp,
    ast.UnaryOp,
    ast.IfExp,
    ast.Dict,
    ast.Set,
    ast.List,
    ast.Tuple,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.Compare,
    ast.Call,
    ast.keyword,
    ast.FormattedValue,
    ast.JoinedStr,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Starred,
    ast.Name,
    # contexts and operators
    ast.expr_context,
    ast.boolop,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)

_REFUSED: dict[type[ast.AST], str] = {
    ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed",
    ast.Global: "global/nonlocal are not allowed",
    ast.Nonlocal: "global/nonlocal are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.FunctionDef: "function and class definitions are not allowed",
    ast.AsyncFunctionDef: "function and class definitions are not allowed",
    ast.ClassDef: "function and class definitions are not allowed",
    ast.Try: "try/except is not allowed",
    ast.Raise: "raise is not allowed",
    ast.With: "with is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Await: "async/await is not allowed",
    ast.AsyncFor: "async/await is not allowed",
    ast.AsyncWith: "async/await is not allowed",
    ast.Match: "match is not allowed",
    ast.AnnAssign: "annotations are not allowed",
    ast.TryStar: "try/except is not allowed",
}


def eval_source(source: str) -> str:
    """What `eval` of a string compiles: it drops leading spaces and tabs (the lint does too)."""
    return source.lstrip(" \t")


def _node_problem(node: ast.AST, callables: frozenset[str], helpers: frozenset[str]) -> str | None:
    if not isinstance(node, _ALLOWED_NODES):
        return _REFUSED.get(type(node), f"{type(node).__name__} is not allowed")
    if isinstance(node, ast.Name):
        if node.id.startswith("__"):
            return f"the name {node.id!r} is not allowed"
        if node.id in FORBIDDEN_NAMES:  # worded like the deployment lint
            if isinstance(node.ctx, ast.Load):
                return f"calling {node.id}() is not allowed"
            return f"the name {node.id!r} is not allowed"
        if node.id in helpers and not isinstance(node.ctx, ast.Load):
            return f"assigns {node.id!r}, which is the script helper {node.id}()"
    elif isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            return f"private attribute {node.attr!r} is not allowed"
        if node.attr in {"format", "format_map"}:
            return f"str.{node.attr} is not allowed; use an f-string"
        if not isinstance(node.ctx, ast.Load):
            return "assigning or deleting attributes is not allowed"
        if node.attr not in ALLOWED_ATTRIBUTES:
            return f"attribute {node.attr!r} is not allowed"
    elif isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            # Forbidden and dunder names are reported as names.
            if func.id not in callables | FORBIDDEN_NAMES and not func.id.startswith("__"):
                return f"calling {func.id}() is not allowed"
        elif not isinstance(func, ast.Attribute):
            return "only helpers, safe builtins and allowed methods may be called"
    return None


@dataclass(frozen=True)
class _Analysis:
    problems: tuple[tuple[str, int | None], ...]
    names: frozenset[str]


@functools.lru_cache(maxsize=1024)
def _analyse(source: str, mode: Mode, allowed_names: frozenset[str]) -> _Analysis:
    limit = MAX_SCRIPT_CHARS if mode == "exec" else MAX_EXPRESSION_CHARS
    if len(source) > limit:
        kind = "script" if mode == "exec" else "expression"
        return _Analysis(((f"{kind} is longer than {limit} characters", None),), frozenset())
    try:
        tree = ast.parse(source, filename=SCRIPT_FILENAME, mode=mode)
    except SyntaxError as error:
        return _Analysis(((f"is not valid Python: {error.msg}", error.lineno),), frozenset())
    except (ValueError, RecursionError, MemoryError) as error:
        return _Analysis(((f"is not valid Python: {type(error).__name__}", None),), frozenset())
    callables = allowed_names | SAFE_BUILTIN_NAMES
    problems: dict[str, int | None] = {}
    names: set[str] = set()
    pending: deque[ast.AST] = deque([tree])
    while pending:  # ast.walk, but not into refused syntax (one problem per construct)
        node = pending.popleft()
        reason = _node_problem(node, callables, allowed_names)
        if reason is not None:
            problems.setdefault(reason, getattr(node, "lineno", None))
        if isinstance(node, ast.Name):
            names.add(node.id)
        if isinstance(node, _ALLOWED_NODES):
            pending.extend(ast.iter_child_nodes(node))
    return _Analysis(tuple(problems.items()), frozenset(names))


def checked_analysis(source: str, mode: Mode, allowed_names: frozenset[str]) -> _Analysis:
    if mode not in ("exec", "eval"):
        raise ValueError(f"mode must be 'exec' or 'eval', got {mode!r}")
    if mode == "eval":
        source = eval_source(source)
    analysis = _analyse(source, mode, frozenset(allowed_names))
    if analysis.problems:
        message = "; ".join(reason for reason, _ in analysis.problems)
        raise SandboxViolation(message, analysis.problems[0][1])
    return analysis


def check_source(source: str, mode: Mode, allowed_names: frozenset[str]) -> None:
    """Raise `SandboxViolation` unless the source only uses what the sandbox allows.

    `allowed_names` are the helpers the code may call besides `SAFE_BUILTINS`.  For `eval`
    the source is checked as `eval` compiles it (leading spaces and tabs dropped).
    """
    checked_analysis(source, mode, allowed_names)
