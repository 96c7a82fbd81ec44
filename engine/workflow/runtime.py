"""The one place that drives SpiffWorkflow: start, complete, step, save.

Everything returned is a plain dataclass; callers never see library objects.
`task.run()` checks nothing, so `complete` verifies that the task exists, is
READY and is a user task before running it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.camunda.specs.user_task import UserTask as CamundaUserTask
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.workflow.compaction import compact_task_tree
from engine.workflow.definitions import UserTaskSpec, user_task_spec
from engine.workflow.sandbox import SandboxError
from engine.workflow.scripting import ScriptHelpers, build_script_engine
from engine.workflow.serialization import StateSerializer


class TaskNotFound(LookupError):
    pass


class TaskNotReady(RuntimeError):
    pass


class MigrationFailed(RuntimeError):
    """The instance cannot be moved to the new version; nothing was changed."""


class ProcessStepFailed(RuntimeError):
    """A script, condition or engine step failed; `element` names where."""

    def __init__(self, message: str, element: str | None) -> None:
        super().__init__(message)
        self.element = element


# (element id, when its timer fires) -> when it fires instead (never earlier).
Postpone = Callable[[str, datetime], datetime]


@dataclass(frozen=True)
class SpecSource:
    """A deployed version: a cache key, and how to read its stored spec on a miss."""

    key: str
    load: Callable[[], str]


@dataclass(frozen=True)
class ReadyTask:
    id: str
    element_id: str
    label: str
    lane: str | None
    phase: str | None


@dataclass(frozen=True)
class InstancePosition:
    """Where an instance waits (BPMN element ids) and the names of the data it holds."""

    waiting: list[str]
    data_keys: list[str]


@dataclass(frozen=True)
class WaitingTimer:
    element_id: str
    fires_at: datetime | None


@dataclass
class StepOutcome:
    """Where an instance stands after a step, and what the step passed through."""

    state: str
    ready: list[ReadyTask]
    passed: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    reached_end: bool = False
    next_timer_at: datetime | None = None


class ProcessRuntime:
    """Facade over SpiffWorkflow for one process (deployed versions are cached)."""

    def __init__(self, cache_size: int = 32) -> None:
        self.serializer = StateSerializer()
        self._specs: OrderedDict[str, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- specs -------------------------------------------------------------

    def _spec(self, source: SpecSource) -> tuple[Any, dict[str, Any]]:
        with self._lock:
            cached = self._specs.get(source.key)
            if cached is not None:
                self._specs.move_to_end(source.key)
                return cached
        loaded = self.serializer.spec_from_json(source.load())
        with self._lock:
            self._specs[source.key] = loaded
            while len(self._specs) > self._cache_size:
                self._specs.popitem(last=False)
        return loaded

    def user_task(self, source: SpecSource, element_id: str) -> UserTaskSpec:
        spec, subprocess_specs = self._spec(source)
        # Tasks of (event) subprocesses live in their own specs.
        for candidate in (spec, *subprocess_specs.values()):
            task_spec = candidate.task_specs.get(element_id)
            if isinstance(task_spec, CamundaUserTask):
                return user_task_spec(task_spec)
        raise TaskNotFound(element_id)

    # -- instances ---------------------------------------------------------

    def start(
        self, source: SpecSource, helpers: ScriptHelpers, data: dict[str, Any]
    ) -> StepOutcome:
        spec, subprocess_specs = self._spec(source)
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=build_script_engine(helpers))
        workflow.data.update(data)
        start = workflow.get_next_task(state=TaskState.READY)
        if start is not None:
            start.data.update(data)
        return self._advance(workflow, [])

    def complete(
        self,
        source: SpecSource,
        state: str,
        task_id: str,
        values: dict[str, Any],
        helpers: ScriptHelpers,
    ) -> StepOutcome:
        workflow = self._load(source, state, helpers)
        return self._complete(workflow, task_id, values)

    def start_in_memory(self, source: SpecSource, helpers: ScriptHelpers) -> InMemoryInstance:
        """An instance that is never saved: for replaying history and measuring the engine."""
        spec, subprocess_specs = self._spec(source)
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=build_script_engine(helpers))
        instance = InMemoryInstance(self, workflow)
        instance.last = self._advance(workflow, [], persist=False)
        return instance

    def _complete(
        self, workflow: Any, task_id: str, values: dict[str, Any], *, persist: bool = True
    ) -> StepOutcome:
        task = self._ready_user_task(workflow, task_id)
        task.data.update(values)
        try:
            task.run()
        except (SpiffWorkflowException, SandboxError) as exc:
            raise _step_failed(exc, task) from exc
        return self._advance(workflow, [task.task_spec.bpmn_id], persist=persist)

    def refresh_timers(
        self,
        source: SpecSource,
        state: str,
        helpers: ScriptHelpers,
        now: datetime | None = None,
        postpone: Postpone | None = None,
    ) -> StepOutcome:
        """Fire whatever timers are due (SpiffWorkflow does not after a load).

        SpiffWorkflow compares a timer with the wall clock; given `now` (the app's clock),
        the timers due by it fire, whatever the wall clock says. `postpone(element_id,
        fires_at)` may move a waiting timer later first (time that must not count)."""
        workflow = self._load(source, state, helpers)
        if now is not None:
            _mark_due_timers(workflow, now, postpone)
        try:
            workflow.refresh_timers()
        except (SpiffWorkflowException, SandboxError) as exc:
            raise _step_failed(exc, getattr(exc, "task", None)) from exc
        return self._advance(workflow, [])

    def signal(
        self, source: SpecSource, state: str, name: str, helpers: ScriptHelpers
    ) -> StepOutcome | None:
        """Deliver a BPMN signal; None when nothing in the instance catches it."""
        workflow = self._load(source, state, helpers)
        if not _deliver_signal(workflow, name):
            return None
        return self._advance(workflow, [])

    def update_data(self, source: SpecSource, state: str, values: dict[str, Any]) -> str:
        """Overwrite data where the instance will read it next (e.g. a new priority)."""
        workflow = self._load(source, state, {})
        for sub in [workflow, *workflow.subprocesses.values()]:
            for task in sub.tasks.values():
                if not task.has_state(TaskState.FINISHED_MASK):
                    task.data.update(values)
                    # Predicted tasks will inherit from their parent: update it as well.
                    if task.parent is not None:
                        task.parent.data.update(values)
        return self.serializer.state_to_json(workflow)

    # -- versions ----------------------------------------------------------

    def position(self, source: SpecSource, state: str) -> InstancePosition:
        workflow = self._load(source, state, {})
        waiting: list[str] = []
        keys: set[str] = set(workflow.data)
        for sub in [workflow, *workflow.subprocesses.values()]:
            for task in sub.get_tasks(state=TaskState.READY | TaskState.WAITING):
                if task.task_spec.bpmn_id and task.task_spec.bpmn_id not in waiting:
                    waiting.append(task.task_spec.bpmn_id)
                keys.update(task.data)
        return InstancePosition(waiting=waiting, data_keys=sorted(keys))

    def migrate(
        self, old: SpecSource, new: SpecSource, state: str, helpers: ScriptHelpers
    ) -> StepOutcome:
        """Move an instance onto another version's spec and run it to its next wait state.

        Ready tasks keep their ids (only waiting events are reset and re-predicted), so
        claims and open task rows carry over. Raises MigrationFailed when a part of the
        instance has no counterpart in the new version."""
        workflow = self._load(old, state, helpers)
        new_spec, new_subprocess_specs = self._spec(new)
        try:
            top, sub_diffs = diff_workflow(
                self.serializer.spec_registry, workflow, new_spec, new_subprocess_specs
            )
            # The stored tree names its tasks' specs: none may be missing after the move.
            if top.removed:
                names = sorted({t.task_spec.bpmn_id or t.task_spec.name for t in top.removed})
                raise MigrationFailed(f"elements in use are gone in the new version: {names}")
            migrate_workflow(top, workflow, new_spec, reset_mask=TaskState.WAITING)
            for sub_id, sub_diff in sub_diffs.items():
                sub = workflow.subprocesses[sub_id]
                if sub_diff is None or sub_diff.removed:
                    raise MigrationFailed(f"subprocess {sub.spec.name} is gone in the new version")
                migrate_workflow(
                    sub_diff, sub, new_subprocess_specs[sub.spec.name], reset_mask=TaskState.WAITING
                )
            workflow.subprocess_specs = new_subprocess_specs
        except SpiffWorkflowException as exc:
            raise MigrationFailed(str(exc)) from exc
        outcome = self._advance(workflow, [])
        try:  # what is saved must load on the new version
            self.serializer.state_from_json(outcome.state, new_spec, new_subprocess_specs)
        except Exception as exc:  # noqa: BLE001 - any failure means the move is unsafe
            raise MigrationFailed(f"the moved instance would not load: {exc}") from exc
        return outcome

    # -- internals ---------------------------------------------------------

    def _load(self, source: SpecSource, state: str, helpers: ScriptHelpers) -> Any:
        spec, subprocess_specs = self._spec(source)
        workflow = self.serializer.state_from_json(state, spec, subprocess_specs)
        # The script engine is not serialized: attach it after every load.
        workflow.script_engine = build_script_engine(helpers)
        return workflow

    def _ready_user_task(self, workflow: Any, task_id: str) -> Any:
        try:
            uuid = UUID(task_id)
        except (ValueError, TypeError, AttributeError) as exc:
            raise TaskNotFound(task_id) from exc
        task = _find_task(workflow, uuid)
        if task is None or not isinstance(task.task_spec, CamundaUserTask):
            raise TaskNotFound(task_id)
        if task.state != TaskState.READY:
            raise TaskNotReady(task_id)
        return task

    def _advance(self, workflow: Any, passed: list[str], *, persist: bool = True) -> StepOutcome:
        completed: list[Any] = []
        try:
            workflow.do_engine_steps(did_complete_task=completed.append)
        except (SpiffWorkflowException, SandboxError) as exc:
            raise _step_failed(exc, getattr(exc, "task", None)) from exc
        passed.extend(t.task_spec.bpmn_id for t in completed if t.task_spec.bpmn_id)
        reached_end = any(isinstance(t.task_spec, EndEvent) for t in completed)
        data: dict[str, Any] = {}
        for task in completed:
            data.update(task.data)
        finished = bool(workflow.is_completed())
        ready = [] if finished else _ready_user_tasks(workflow)
        if not finished:
            for sub in [workflow, *workflow.subprocesses.values()]:
                compact_task_tree(sub)
        state = ""
        if persist:
            try:
                state = self.serializer.state_to_json(workflow)
            except (TypeError, ValueError) as exc:
                raise ProcessStepFailed(f"task data cannot be saved: {exc}", None) from exc
        return StepOutcome(
            state=state,
            ready=ready,
            passed=passed,
            data=data,
            finished=finished,
            reached_end=reached_end,
            next_timer_at=_next_timer(workflow),
        )


class InMemoryInstance:
    """A running instance held in memory (see `ProcessRuntime.start_in_memory`)."""

    def __init__(self, runtime: ProcessRuntime, workflow: Any) -> None:
        self._runtime = runtime
        self._workflow = workflow
        self.last: StepOutcome | None = None

    @property
    def ready(self) -> list[ReadyTask]:
        return self.last.ready if self.last is not None else []

    def complete(self, task_id: str, values: dict[str, Any]) -> StepOutcome:
        self.last = self._runtime._complete(self._workflow, task_id, values, persist=False)
        return self.last

    def signal(self, name: str) -> bool:
        """Deliver a BPMN signal; False when nothing in the instance catches it."""
        if not _deliver_signal(self._workflow, name):
            return False
        self.last = self._runtime._advance(self._workflow, [], persist=False)
        return True


def _deliver_signal(workflow: Any, name: str) -> bool:
    """Throw a BPMN signal into the instance; False when nothing catches it."""
    event = BpmnEvent(SignalEventDefinition(name), {})
    return bool(workflow.event_manager.catch(event, internal=False))


def _find_task(workflow: Any, uuid: UUID) -> Any:
    task = workflow.tasks.get(uuid)
    if task is not None:
        return task
    for sub in workflow.subprocesses.values():
        task = sub.tasks.get(uuid)
        if task is not None:
            return task
    return None


def _ready_user_tasks(workflow: Any) -> list[ReadyTask]:
    result = []
    for sub in [workflow, *workflow.subprocesses.values()]:
        for task in sub.tasks.values():
            if task.state == TaskState.READY and isinstance(task.task_spec, CamundaUserTask):
                spec = task.task_spec
                extensions = getattr(spec, "extensions", {}) or {}
                result.append(
                    ReadyTask(
                        id=str(task.id),
                        element_id=spec.bpmn_id,
                        label=spec.bpmn_name or spec.bpmn_id,
                        lane=spec.lane,
                        phase=extensions.get("phase"),
                    )
                )
    return result


# A moment every wall clock has passed: a timer holding it fires at the next refresh.
_LONG_PAST = "1970-01-01T00:00:00+00:00"


def _mark_due_timers(workflow: Any, now: datetime, postpone: Postpone | None) -> None:
    for sub in [workflow, *workflow.subprocesses.values()]:
        for task in sub.tasks.values():
            if task.state != TaskState.WAITING:
                continue
            fire = task._get_internal_data("event_value")
            if not isinstance(fire, str):
                continue
            try:
                due = datetime.fromisoformat(fire)
            except ValueError:
                continue
            if due.tzinfo is None:
                continue
            if postpone is not None:
                later = postpone(task.task_spec.bpmn_id or "", due)
                if later > due:
                    due = later
                    task._set_internal_data(event_value=due.isoformat())
            if due <= now:
                task._set_internal_data(event_value=_LONG_PAST)


def _next_timer(workflow: Any) -> datetime | None:
    moments: list[datetime] = []
    for sub in [workflow, *workflow.subprocesses.values()]:
        for task in sub.tasks.values():
            if task.state != TaskState.WAITING:
                continue
            fire = task._get_internal_data("event_value")
            if isinstance(fire, str):
                try:
                    moments.append(datetime.fromisoformat(fire))
                except ValueError:
                    continue
    return min(moments) if moments else None


def _step_failed(exc: Exception, task: Any) -> ProcessStepFailed:
    element = None
    if task is not None and getattr(task, "task_spec", None) is not None:
        element = task.task_spec.bpmn_id
    message = str(exc)
    error_line = getattr(exc, "error_line", None) if isinstance(exc, WorkflowException) else None
    if error_line:
        message = f"{message} (line: {error_line})"
    return ProcessStepFailed(message, element)
