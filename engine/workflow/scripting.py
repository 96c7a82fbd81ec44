"""The script engine that runs BPMN scripts, gateway conditions and timer expressions.

Each instance is built from scratch, so no library global is ever mutated and
helpers bound to one incident's policy snapshot never leak into another
incident. Everything a diagram computes runs in the sandbox
(`engine.workflow.sandbox`): whitelisted syntax and helpers only, in a separate
process with CPU-time and memory limits, because deploying a diagram is
deploying code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine

from engine.workflow.sandbox import SandboxedScriptEngine

ScriptHelpers = Mapping[str, Callable[..., Any]]


def build_script_engine(helpers: ScriptHelpers) -> PythonScriptEngine:
    """A fresh sandboxed engine whose only globals are the given helpers."""
    return SandboxedScriptEngine.from_helpers(helpers)
