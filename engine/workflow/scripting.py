"""The script engine that runs BPMN scripts and gateway conditions.

Each instance is built from scratch with its own environment dict, so no
library global is ever mutated and helpers bound to one incident's policy
snapshot never leak into another incident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

ScriptHelpers = Mapping[str, Callable[..., Any]]


def build_script_engine(helpers: ScriptHelpers) -> PythonScriptEngine:
    """A fresh engine whose globals are exactly the given helpers."""
    environment = TaskDataEnvironment(dict(helpers))
    return PythonScriptEngine(environment=environment)
