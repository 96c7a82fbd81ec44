"""`itsm lint FILE` prints every bound problem as `file:line: [element] message`, one a line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.test_bounds_encoding import _bundled as bundled_in
from tests.test_bounds_timers import bundled_with_record_timer

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = (ROOT / "bpmn" / "incident_management.bpmn").read_text(encoding="utf-8")


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", "lint", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_itsm_lint_prints_bound_problems_one_a_line(tmp_path: Path):
    text = BUNDLED.replace('name="Record and classify incident"', f'name="{"R" * 301}"')
    text = text.replace('"incident_management"', '"incident&#10;management&quot;x"')
    cases = {
        "names.bpmn": text.encode(),
        "latin1.bpmn": bundled_in("ISO-8859-1"),
        "timer.bpmn": bundled_with_record_timer('"P99999999Y"'),
        "number.bpmn": bundled_with_record_timer("10**100"),
    }
    expected = {
        "names.bpmn": ["[record_incident] name 'RRR", '[incident\\nmanagement"x] the process id'],
        "latin1.bpmn": ["latin1.bpmn:1: the document is encoded as ISO-8859-1"],
        "timer.bpmn": ["[record_overdue] timeDuration 'P99999999Y' is too long"],
        "number.bpmn": ["[record_overdue] timeDuration reads no form field"],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = lint(path)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.splitlines()
        assert lines[-1].endswith("problem(s)")
        for line in lines[:-1]:
            assert re.match(rf"{re.escape(str(path))}:\d+: (\[[^\]]+\] )?\S", line), line
        for fragment in expected[name]:
            assert any(fragment in line for line in lines), (fragment, lines)
