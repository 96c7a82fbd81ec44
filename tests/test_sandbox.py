"""The script sandbox: AST whitelist, child-process executor, SpiffWorkflow engine."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.util.task import TaskState

from engine.domain.priority import DEFAULT_PRIORITY_MATRIX
from engine.domain.script_helpers import HELPER_NAMES, bind_helpers
from engine.domain.sla import DEFAULT_SLA_TARGETS
from engine.workflow.sandbox import (
    HelperTable,
    SandboxedScriptEngine,
    SandboxError,
    SandboxExecutor,
    SandboxScriptError,
    SandboxTimeout,
    SandboxViolation,
    check_source,
)
from tests.conftest import missing

TIMEOUT = 1.0
MEMORY = 256 * 1024 * 1024  # the default is 512 MiB; less is quicker to exhaust
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def due_times(priority: int) -> dict[str, datetime | None]:
    target = DEFAULT_SLA_TARGETS[priority]
    return {
        "response_due": NOW + timedelta(seconds=target.response_seconds),
        "resolution_due": None if priority == 4 else NOW + timedelta(hours=priority),
    }


# No SLA policy for priority 5: itsm_sla_due(5) must fail the same way in both.
TARGETS = {p: t for p, t in DEFAULT_SLA_TARGETS.items() if p != 5}
TABLE = HelperTable.from_policy(DEFAULT_PRIORITY_MATRIX, TARGETS, due_times)


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    with SandboxExecutor(timeout=TIMEOUT, memory_bytes=MEMORY, workers=2) as shared:
        yield shared


# --- check_source -----------------------------------------------------------------------------

ESCAPES = [
    "().__class__.__bases__[0].__subclasses__()",
    "x = ().__class__",
    "__import__('os')",
    "import os",
    "from os import path",
    "open('/etc/passwd')",
    "getattr(x, '__class__')",
    "eval('1')",
    "exec('x = 1')",
    "compile('1', 's', 'eval')",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "type(x)",
    "print(1)",
    "x = __builtins__",
    "x = __name__",
    "'{0.__class__}'.format(1)",
    "'{x}'.format_map(d)",
    "f = '{0.__class__}'.format\nf(1)",
    "x = f'{y.__class__}'",
    "(y for y in []).gi_frame.f_back.f_globals",
    "int.mro()",
    "d.keys().mapping",
    "x.real",
    "x.y = 1",
    "del x.y",
    "[len][0]([])",
    "f = len\nf([])",
    "itsm_priority = 1",
    "lambda: 1",
    "def f():\n    pass",
    "class A:\n    pass",
    "global x",
    "try:\n    x = 1\nexcept Exception:\n    pass",
    "raise ValueError",
    "with x:\n    pass",
    "match x:\n    case 1:\n        pass",
    "x: int = 1",
    "x = 1 +",
    "x = 'a' * 10\n" * 2000,
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_rejected_before_running(source: str):
    with pytest.raises(SandboxViolation):
        check_source(source, "exec", HELPER_NAMES)


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('id')", "x.__class__", "lambda: 1", "(yield)", "type(x) == int"],
)
def test_escaping_expressions_are_rejected(expression: str):
    with pytest.raises(SandboxViolation):
        check_source(expression, "eval", HELPER_NAMES)


def test_violation_names_the_problem_and_line():
    with pytest.raises(SandboxViolation) as caught:
        check_source("x = 1\nimport os", "exec", HELPER_NAMES)
    assert "imports are not allowed" in str(caught.value)
    assert caught.value.line_number == 2


def test_only_the_given_helpers_may_be_called():
    check_source("p = itsm_priority(1, 2)", "exec", HELPER_NAMES)
    with pytest.raises(SandboxViolation, match="calling itsm_priority"):
        check_source("p = itsm_priority(1, 2)", "exec", frozenset())


SCRIPT_OK = """
total = 0
for i in range(5):
    if i % 2 == 0:
        total += i
    elif i == 3:
        continue
    else:
        total -= 1
n = 0
while n < 3:
    n += 1
squares = [i * i for i in range(4) if i]
lookup = {k: v for k, v in zip(['a', 'b'], [1, 2])}
label = f"{name.strip().upper()}-{total:03d}"
parts = ' a,b '.strip().split(',')
parts.append('c')
ordered = sorted(parts, key=len, reverse=True)
first, *rest = ordered
grade = 'high' if (p := itsm_priority(impact, urgency)) <= 2 else 'low'
assert p == 2
items = lookup.get('a', 0) + len(lookup.keys()) + max(abs(-3), min(1, 2))
head = name[:2]
del n
"""


def test_a_normal_script_passes_and_runs(executor: SandboxExecutor):
    check_source(SCRIPT_OK, "exec", HELPER_NAMES)
    _, data = executor.run(SCRIPT_OK, {"name": " db ", "impact": "1", "urgency": 2}, TABLE)
    assert data["total"] == 0 - 1 + 2 + 4
    assert "n" not in data
    assert data["squares"] == [1, 4, 9]
    assert data["lookup"] == {"a": 1, "b": 2}
    assert data["label"] == "DB-005"
    assert data["ordered"] == ["a", "b", "c"] and data["rest"] == ["b", "c"]
    assert data["grade"] == "high" and data["p"] == 2
    assert data["items"] == 1 + 2 + 3
    assert data["head"] == " d"


@pytest.mark.parametrize("source", ESCAPES[:20])
def test_the_executor_checks_before_running(source: str):
    # A closed executor would fail on any call that got as far as a child.
    closed = SandboxExecutor()
    closed.close()
    with pytest.raises(SandboxViolation):
        closed.run(source, {"x": 1, "d": {}}, TABLE)


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["while True:\n    pass", "x = sum(range(10**15))"])
def test_runaway_script_times_out_and_the_executor_recovers(executor: SandboxExecutor, source):
    executor.run("x = 1", {}, TABLE)  # a warm worker, so the timing is the script's alone
    started = time.monotonic()
    with pytest.raises(SandboxTimeout, match="did not finish"):
        executor.run(source, {}, TABLE)
    assert time.monotonic() - started < TIMEOUT + 1.0
    for _ in range(4):  # both workers serve again, the killed one restarted
        assert executor.run("y = x + 1", {"x": 1}, TABLE)[1]["y"] == 2


@pytest.mark.parametrize("source", ["x = 'a' * (10**10)", "x = [0] * (10**10)"])
def test_huge_allocations_fail_cleanly(executor: SandboxExecutor, source: str):
    with pytest.raises(SandboxError, match="out of memory") as caught:
        executor.run(source, {}, TABLE)
    assert not isinstance(caught.value, SandboxTimeout)
    assert executor.run("y = 2", {}, TABLE)[1] == {"y": 2}


@pytest.mark.parametrize(
    "source",
    ["x = [' ' * 10**6 for i in range(10**5)]", "x = 'ab' * 10**8\ny = x.replace('a', 'aaaa')"],
)
def test_growing_allocations_fail_cleanly(executor: SandboxExecutor, source: str):
    # Touching the whole limit takes a while (page faults): out of memory or out of time.
    with pytest.raises(SandboxError, match="out of memory|did not finish"):
        executor.run(source, {}, TABLE)
    assert executor.run("y = 2", {}, TABLE)[1] == {"y": 2}


def test_cpu_limit_is_a_backstop_when_the_wall_clock_allows_more():
    with SandboxExecutor(timeout=20.0, cpu_seconds=1, workers=1) as strict:
        started = time.monotonic()
        with pytest.raises(SandboxTimeout, match="CPU"):
            strict.run("while True:\n    pass", {}, TABLE)
        assert time.monotonic() - started < 5
        assert strict.run("y = 1", {}, TABLE)[1] == {"y": 1}


def test_child_runs_with_resource_limits(executor: SandboxExecutor):
    executor.run("x = 1", {}, TABLE)
    limits = Path(f"/proc/{executor.pids[0]}/limits")
    if not limits.exists():
        missing("no /proc")
    text = limits.read_text()
    address_space = next(line for line in text.splitlines() if "address space" in line)
    assert str(MEMORY) in address_space


def test_oversized_results_are_refused(executor: SandboxExecutor):
    with pytest.raises(SandboxError, match="larger than"):
        executor.run("x = 'a' * (20 * 1024 * 1024)", {}, TABLE)


# --- results and data -------------------------------------------------------------------------


def test_helpers_match_the_in_process_helpers(executor: SandboxExecutor):
    bound = bind_helpers(DEFAULT_PRIORITY_MATRIX, TARGETS, due_times)
    tables = [TABLE, HelperTable.from_helpers(bound)]
    values: list[Any] = [1, 2, 3, "1", "3", 4, "x", True, None]
    calls: list[tuple[str, tuple[Any, ...]]]
    calls = [("itsm_priority", (i, u)) for i in values for u in values[:5]]
    calls += [("itsm_major", (i, p)) for i in values[:6] for p in [1, 2, 5, 6, True]]
    calls += [("itsm_management_escalation", (p, m)) for p in [1, 2, 3, 5, 0] for m in [0, 1]]
    calls += [("itsm_sla_due", (p,)) for p in [1, 2, 3, 4, 5, "2"]]
    for name, args in calls:
        try:
            expected: Any = ("ok", bound[name](*args))
        except (ValueError, TypeError) as error:
            expected = ("error", type(error).__name__, str(error))
        for table in tables:
            try:
                result, _ = executor.run(f"{name}(*args)", {"args": list(args)}, table, "eval")
                got: Any = ("ok", result)
            except SandboxScriptError as error:
                got = ("error", error.error_type, error.detail)
            assert got == expected, (name, args)


def test_the_default_process_scripts_give_the_same_data(executor: SandboxExecutor):
    scripts = [
        "priority = itsm_priority(impact, urgency)",
        "major = itsm_major(impact, priority)",
        "management_escalation = itsm_management_escalation(priority, major)",
        "sla_due = itsm_sla_due(priority)",
    ]
    bound = bind_helpers(DEFAULT_PRIORITY_MATRIX, TARGETS, due_times)
    for impact in ["1", "2", "3"]:
        for urgency in ["1", "2", "3"]:
            local: dict[str, Any] = {"impact": impact, "urgency": urgency}
            sandboxed = dict(local)
            for script in scripts:
                namespace = {**local, **bound}
                try:
                    exec(script, namespace)
                except ValueError as error:  # P5 has no SLA policy in TARGETS
                    with pytest.raises(SandboxScriptError) as caught:
                        executor.run(script, sandboxed, TABLE)
                    assert caught.value.detail == str(error)
                    break
                local = {k: v for k, v in namespace.items() if k not in bound}
                local.pop("__builtins__")
                _, sandboxed = executor.run(script, sandboxed, TABLE)
                assert sandboxed == local


def test_data_is_returned_new_with_unseen_and_unchanged_values_kept(executor: SandboxExecutor):
    marker = object()
    opened = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    data: dict[Any, Any] = {
        "opened": opened,
        "n": 1,
        "flag": 1,
        "items": [1, 2],
        "gone": 3,
        "itsm_priority": "shadowed",
        5: "int key",
        "obj": marker,
    }
    script = (
        "n = n + 1\nflag = True\nitems.append(3)\ndel gone\nnew = {'a': (1, 2)}\n"
        "bad = {1, 2}\nseen = opened[:4]\nprobe = obj"
    )
    with pytest.raises(SandboxScriptError, match="NameError"):
        executor.run(script, data, TABLE)  # `obj` is not JSON-like: the script cannot see it
    result, new = executor.run(script.replace("\nprobe = obj", ""), data, TABLE)
    assert result is None
    assert new is not data and data["n"] == 1 and data["items"] == [1, 2] and "gone" in data
    assert new["opened"] is opened  # unchanged: the original object, not its ISO string
    assert new["seen"] == "2025"
    assert new["n"] == 2 and new["flag"] is True and new["items"] == [1, 2, 3]
    assert "gone" not in new and "bad" not in new
    assert new["new"] == {"a": [1, 2]}
    untyped: dict[Any, Any] = new  # keys a script cannot name come back as they were
    assert untyped[5] == "int key" and new["obj"] is marker and new["itsm_priority"] == "shadowed"
    assert not any(name in new for name in HELPER_NAMES - {"itsm_priority"})


def test_eval_results(executor: SandboxExecutor):
    assert executor.run(" priority <= 2", {"priority": 2}, TABLE, "eval")[0] is True
    assert executor.run("(1, 'a')", {}, TABLE, "eval")[0] == [1, "a"]
    assert executor.run("f'PT{hours}H'", {"hours": 4}, TABLE, "eval")[0] == "PT4H"
    with pytest.raises(SandboxError, match="not JSON-like"):
        executor.run("{1, 2}", {}, TABLE, "eval")


def test_script_errors_carry_type_and_line(executor: SandboxExecutor):
    with pytest.raises(SandboxScriptError) as caught:
        executor.run("a = 1\nb = a / 0", {}, TABLE)
    assert caught.value.error_type == "ZeroDivisionError"
    assert caught.value.line_number == 2
    with pytest.raises(SandboxScriptError, match="NameError: name 'missing'"):
        executor.run("missing + 1", {}, TABLE, "eval")


def test_an_empty_table_has_no_helpers(executor: SandboxExecutor):
    with pytest.raises(SandboxViolation):
        executor.run("itsm_major(1, 1)", {}, HelperTable.empty(), "eval")
    # With no helper of that name, task data may use it.
    assert executor.run("itsm_major", {"itsm_major": 7}, HelperTable.empty(), "eval")[0] == 7


# --- threads and cost -------------------------------------------------------------------------


def test_concurrent_calls_from_eight_threads(executor: SandboxExecutor):
    errors: list[BaseException] = []
    results: dict[int, list[int]] = {}

    def work(index: int) -> None:
        try:
            mine = []
            for step in range(25):
                _, data = executor.run("out = n * 2 + k", {"n": index, "k": step}, TABLE)
                mine.append(data["out"])
            results[index] = mine
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert results == {i: [i * 2 + k for k in range(25)] for i in range(8)}


def test_other_threads_are_served_while_one_script_runs_away(executor: SandboxExecutor):
    outcome: list[BaseException] = []

    def runaway() -> None:
        try:
            executor.run("while True:\n    pass", {}, TABLE)
        except SandboxTimeout as error:
            outcome.append(error)

    thread = threading.Thread(target=runaway)
    thread.start()
    time.sleep(0.1)
    served = 0
    while thread.is_alive():
        assert executor.run("y = 1", {}, TABLE)[1] == {"y": 1}
        served += 1
    thread.join()
    assert outcome and served > 10


def test_per_call_overhead(executor: SandboxExecutor):
    executor.run("x = 1", {}, TABLE)
    data = {"impact": "2", "urgency": "2", "title": "mail down"}
    samples = []
    for _ in range(1000):
        started = time.perf_counter()
        executor.run("x = 1", data, TABLE)
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    print(f"sandbox round trip: median {median * 1e6:.0f} us over 1000 calls")
    assert median < 0.02


def test_a_child_killed_while_idle_is_replaced_transparently():
    with SandboxExecutor(timeout=TIMEOUT, workers=1) as sandbox:
        sandbox.run("x = 1", {}, TABLE)
        (pid,) = sandbox.pids
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
        assert sandbox.run("y = 1", {}, TABLE)[1] == {"y": 1}
        assert sandbox.pids != [pid]


def test_closed_executor_refuses_and_stops_children():
    sandbox = SandboxExecutor(timeout=TIMEOUT, workers=1)
    sandbox.run("x = 1", {}, TABLE)
    (pid,) = sandbox.pids
    sandbox.close()
    assert sandbox.pids == []
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    with pytest.raises(SandboxError, match="closed"):
        sandbox.run("x = 1", {}, TABLE)


# --- SpiffWorkflow ----------------------------------------------------------------------------

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="defs" targetNamespace="http://example.com/sandbox">
  <bpmn:process id="tiny" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute" />
    <bpmn:scriptTask id="compute" name="Compute priority" scriptFormat="python">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="compute" targetRef="wait" />
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition>
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">wait_for</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="route" />
    <bpmn:exclusiveGateway id="route" default="f_low">
      <bpmn:incoming>f3</bpmn:incoming>
      <bpmn:outgoing>f_high</bpmn:outgoing><bpmn:outgoing>f_low</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_high" sourceRef="route" targetRef="end_high">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression"
        >{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_low" sourceRef="route" targetRef="end_low" />
    <bpmn:endEvent id="end_high"><bpmn:incoming>f_high</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_low"><bpmn:incoming>f_low</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
GOOD_SCRIPT = "priority = itsm_priority(impact, urgency)\nwait_for = 'PT0S'"


def start_workflow(
    executor: SandboxExecutor,
    script: str = GOOD_SCRIPT,
    condition: str = "priority <= 2",
    data: dict[str, Any] | None = None,
) -> Any:
    parser = CamundaParser()
    source = BPMN.format(script=escape(script), condition=escape(condition))
    parser.add_bpmn_str(source.encode(), "tiny.bpmn")
    bound = bind_helpers(DEFAULT_PRIORITY_MATRIX, TARGETS, due_times)
    engine = SandboxedScriptEngine.from_helpers(bound, executor)
    workflow = BpmnWorkflow(
        parser.get_spec("tiny"), parser.get_subprocess_specs("tiny"), script_engine=engine
    )
    first = workflow.get_next_task(state=TaskState.READY)
    first.data.update(data if data is not None else {"impact": "1", "urgency": "2"})
    return workflow


def run_to_end(workflow: Any) -> list[str]:
    workflow.do_engine_steps()
    for _ in range(20):
        if workflow.is_completed():
            break
        time.sleep(0.01)
        workflow.refresh_timers()
        workflow.do_engine_steps()
    assert workflow.is_completed()
    return [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.COMPLETED)]


def test_a_well_behaved_process_completes_through_the_sandbox(executor: SandboxExecutor):
    high = start_workflow(executor)
    passed = run_to_end(high)
    assert "end_high" in passed and "end_low" not in passed
    assert high.data["priority"] == 2
    low = start_workflow(executor, data={"impact": "3", "urgency": "3"})
    passed = run_to_end(low)
    assert "end_low" in passed and "end_high" not in passed


def test_a_looping_script_fails_its_task(executor: SandboxExecutor):
    workflow = start_workflow(executor, script="while True:\n    x = 1")
    started = time.monotonic()
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    assert time.monotonic() - started < TIMEOUT + 1.0
    assert caught.value.task_spec.bpmn_id == "compute"
    assert caught.value.task.task_spec.bpmn_id == "compute"
    assert "Compute priority" in caught.value.task_trace[0]
    assert "did not finish" in str(caught.value)
    assert isinstance(caught.value.__cause__, SandboxTimeout)


def test_an_escaping_script_fails_its_task(executor: SandboxExecutor):
    workflow = start_workflow(executor, script="x = ().__class__.__bases__[0].__subclasses__()")
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    assert caught.value.task_spec.bpmn_id == "compute"
    assert "private attribute" in str(caught.value)


def test_a_failing_script_reports_the_line(executor: SandboxExecutor):
    workflow = start_workflow(executor, script="a = 1\npriority = itsm_priority(9, 9)")
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    assert caught.value.line_number == 2
    assert caught.value.error_line == "priority = itsm_priority(9, 9)"
    assert "impact must be 1, 2 or 3" in str(caught.value)


def test_a_bad_gateway_condition_fails_the_gateway(executor: SandboxExecutor):
    workflow = start_workflow(executor, condition="().__class__")
    with pytest.raises(WorkflowTaskException) as caught:
        run_to_end(workflow)
    assert caught.value.task_spec.bpmn_id == "route"


def test_a_misspelt_name_gets_a_suggestion(executor: SandboxExecutor):
    workflow = start_workflow(executor, condition="priorty <= 2")
    with pytest.raises(WorkflowTaskException) as caught:
        run_to_end(workflow)
    assert "Did you mean" in str(caught.value) and "'priority'" in str(caught.value)
