"""The sandbox plugged into SpiffWorkflow in place of `PythonScriptEngine`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import (
    BasePythonScriptEngineEnvironment,
)
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)

from engine.workflow.bounds import timer_value_problem
from engine.workflow.sandbox.checks import check_source
from engine.workflow.sandbox.executor import SandboxExecutor, default_executor
from engine.workflow.sandbox.helpers import HelperTable
from engine.workflow.sandbox.limits import SandboxError, SandboxScriptError

# --- SpiffWorkflow --------------------------------------------------------------------------


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that runs everything in the sandbox."""

    def __init__(self, executor: SandboxExecutor, helpers: HelperTable) -> None:
        super().__init__({})
        self.executor = executor
        self.helpers = helpers

    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> Any:
        data = {**(external_context or {}), **context}
        result, _ = self.executor.run(expression, data, self.helpers, "eval")
        return result

    def execute(
        self,
        script: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        external = dict(external_context or {})
        data = {**external, **context}
        _, new_data = self.executor.run(script, data, self.helpers, "exec")
        for key, value in external.items():
            # External context (data objects) is readable, not task data.
            if key not in context and new_data.get(key) is value:
                del new_data[key]
        context.clear()
        context.update(new_data)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise SandboxError("service tasks are not supported")


_TIMER_KINDS: tuple[tuple[type[Any], str], ...] = (
    (TimeDateEventDefinition, "timeDate"),
    (DurationTimerEventDefinition, "timeDuration"),
    (CycleTimerEventDefinition, "timeCycle"),
)


def timer_kind(task: Any, expression: str) -> str | None:
    """The kind of timer ("timeDate", ...) when `expression` is the timer expression of the
    event `task` runs: SpiffWorkflow evaluates it through the script engine and then parses
    and expands the value itself, so the value must be checked in between."""
    definition = getattr(getattr(task, "task_spec", None), "event_definition", None)
    candidates = (
        definition.event_definitions
        if isinstance(definition, MultipleEventDefinition)
        else [definition]
    )
    for candidate in candidates:
        for timer_class, kind in _TIMER_KINDS:
            if isinstance(candidate, timer_class) and candidate.expression == expression:
                return kind
    return None


def _exception_for_spiff(error: SandboxError) -> Exception:
    """What WorkflowTaskException gets as `exception` (a NameError gives 'did you mean')."""
    if isinstance(error, SandboxScriptError) and error.error_type == "NameError":
        return NameError(error.detail)
    return error


class SandboxedScriptEngine(PythonScriptEngine):
    """PythonScriptEngine whose scripts, conditions and timer expressions run sandboxed.

    The value of a timer expression is checked against `engine.workflow.bounds` (the lint
    checks literal timers against the same bounds). Failures raise
    `WorkflowTaskException` carrying the task, so the engine reports the failing element.
    """

    def __init__(
        self, helpers: HelperTable | None = None, executor: SandboxExecutor | None = None
    ) -> None:
        self.helpers = helpers if helpers is not None else HelperTable.empty()
        self.executor = executor if executor is not None else default_executor()
        super().__init__(environment=SandboxEnvironment(self.executor, self.helpers))

    @classmethod
    def from_helpers(
        cls, helpers: Mapping[str, Callable[..., Any]], executor: SandboxExecutor | None = None
    ) -> SandboxedScriptEngine:
        """For the runtime: the bound helpers it passes today, tabulated."""
        return cls(HelperTable.from_helpers(helpers), executor)

    def validate(self, expression: str) -> None:
        check_source(expression, "eval", self.helpers.names)

    def evaluate(
        self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            result = self.environment.evaluate(expression, task.data, external_context)
        except SandboxError as error:
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}': {error}",
                task=task,
                exception=_exception_for_spiff(error),
            ) from error
        kind = timer_kind(task, expression)
        problem = None if kind is None else timer_value_problem(kind, result)
        if problem is not None:
            # Before SpiffWorkflow expands it: "P99999999Y" would loop ~10^9 times in this
            # thread, "P100000Y" or a date in year 9999 would overflow.
            raise WorkflowTaskException(f"the timer's value is refused: {problem}", task=task)
        return result

    def execute(
        self, task: Any, script: str, external_context: Mapping[str, Any] | None = None
    ) -> bool:
        try:
            return bool(self.environment.execute(script, task.data, external_context))
        except SandboxError as error:
            line = getattr(error, "line_number", None)
            error_line = None
            if line:
                lines = script.splitlines()
                error_line = lines[line - 1] if 0 < line <= len(lines) else None
            raise WorkflowTaskException(
                str(error),
                task=task,
                exception=_exception_for_spiff(error),
                line_number=line,
                error_line=error_line,
            ) from error
