"""May an open incident move from its process version to a new one? The policy, per incident.

The engine mechanics of moving an incident live elsewhere; this module only decides whether
the move is safe and says why not, in short sentences that name elements and data. It is
pure (bytes and names in, frozen dataclasses out), reads the same XML the linter and
`engine.workflow.diff` read, and does not use SpiffWorkflow. The rules are written down for
designers and incident managers in docs/migration.md; in short, a move is blocked when

1. (layout never blocks: relabelled steps, reworded fields, reordered fields, moved shapes);
2. an element the incident waits at (or a subprocess around it) was removed, moved into
   another subprocess, or changed in anything but its layout and its routes;
3. a condition ahead reads data the incident holds that a changed or removed step recorded
   under the old version;
4. code or a form ahead reads the output of a script task that already ran and changed;
5. (everything else passes);
6. code ahead in the new version would read data the incident does not hold, recorded by no
   step on the way there, where the old version would not have.

"Ahead" is what the new version can still reach from the incident's position along sequence
flows (into and out of subprocesses, including boundary events of active elements). A path
on which a step records a data name again before a reader reads it does not count for that
name: the reader then sees the value recorded under the new version.

`MovePolicy(old, new)` does the per-version work once (parsing, the diff, the graph and the
data each element reads and records); `.assess(position, produced)` is then cheap, and its
graph walks are cached, so a migration preview can ask for hundreds of incidents.
"""

from __future__ import annotations

import ast
import keyword
import re
import textwrap
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

from lxml import etree

from engine.workflow.diff import LAYOUT_ONLY_ASPECTS, ElementChange, ProcessDiff, diff_definitions
from engine.workflow.lint import (
    BPMN_NS,
    CAMUNDA_NS,
    CONTAINER_TAGS,
    FLOW_NODE_TAGS,
    GATEWAY_TAGS,
)
from engine.workflow.safe_xml import parse_bpmn_xml

# lxml ships no type stubs here, so this is Any to mypy; it documents intent.
Element: TypeAlias = etree._Element

# Changes to the element an incident waits at that do not block: what people see, and the
# routes in and out (where the incident goes next is judged by the rules on what is ahead).
POSITION_IGNORED_ASPECTS = LAYOUT_ONLY_ASPECTS | {"flow", "default_flow"}
# Changes to a step that change what the data it recorded means. Moving a step, rewiring its
# flows, giving it to another lane or phase does not; its type, script or form does.
DATA_MEANING_ASPECTS = frozenset({"type", "script", "form", "other"})

_B, _C = f"{{{BPMN_NS}}}", f"{{{CAMUNDA_NS}}}"
_FLOW_NODE_TAGS = tuple(_B + tag for tag in sorted(FLOW_NODE_TAGS))
_TIMER_TAGS = tuple(_B + tag for tag in ("timeDate", "timeDuration", "timeCycle"))
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class MoveAssessment:
    """Whether one incident may move to the new version; `reasons` is empty when it may."""

    can_move: bool
    reasons: tuple[str, ...] = ()


# --- reading code --------------------------------------------------------------------------------


def _parse(source: str, mode: str) -> ast.AST | None:
    try:
        return ast.parse(source, mode=mode)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _guess_names(source: str) -> frozenset[str]:
    """Every identifier in code that does not parse: reads and records are then unknowable,
    so assume the worst (a deployed version has passed the linter, so this is rare)."""
    return frozenset(n for n in _IDENTIFIER.findall(source) if not keyword.iskeyword(n))


def _comprehension_names(tree: ast.AST) -> set[str]:
    """Loop variables of comprehensions: local to the expression, not data."""
    return {
        node.id
        for comp in ast.walk(tree)
        if isinstance(comp, ast.comprehension)
        for node in ast.walk(comp.target)
        if isinstance(node, ast.Name)
    }


def _loads(tree: ast.AST) -> frozenset[str]:
    loads = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return frozenset(loads - _comprehension_names(tree))


def _stores(tree: ast.AST) -> frozenset[str]:
    stores = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    return frozenset(stores - _comprehension_names(tree))


def _unconditional_stores(tree: ast.Module) -> frozenset[str]:
    """Names every run of the script assigns: plain assignments at its top level. A name
    assigned only inside if/for/try/with may stay unset, so it does not count."""
    names: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            targets: list[ast.expr] = list(statement.targets)
        elif isinstance(statement, ast.AugAssign | ast.AnnAssign) and statement.value:
            targets = [statement.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                names.add(target.id)
            elif isinstance(target, ast.Tuple | ast.List):
                names |= {e.id for e in target.elts if isinstance(e, ast.Name)}
    return frozenset(names)


def _norm(text: str | None) -> str:
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return textwrap.dedent("\n".join(line.rstrip() for line in lines)).strip()


def _expression_reads(text: str | None) -> frozenset[str]:
    source = _norm(text)
    if not source:
        return frozenset()
    tree = _parse(source, "eval")
    return _guess_names(source) if tree is None else _loads(tree)


# --- one version ---------------------------------------------------------------------------------


def _local(element: Element) -> str | None:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(_B):
        return None
    return tag[len(_B) :]


@dataclass
class _Version:
    """One process version as a graph of flow nodes plus the data each reads and records."""

    kind: dict[str, str] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    containers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # outermost first
    attached_to: dict[str, str] = field(default_factory=dict)
    # What becomes active when a node completes, and what is active while it is.
    after: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    boundary: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Data read: by conditions on the routes out of a node, by code run there, by form fields
    # (whose values a form may show prefilled).
    condition_reads: dict[str, frozenset[str]] = field(default_factory=dict)
    code_reads: dict[str, frozenset[str]] = field(default_factory=dict)
    form_reads: dict[str, frozenset[str]] = field(default_factory=dict)
    # Data recorded: everything a node may record, and what it records on every run.
    writes: dict[str, frozenset[str]] = field(default_factory=dict)
    sure_writes: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, data: bytes) -> _Version:
        version = cls()
        root = parse_bpmn_xml(data).getroot()
        for process in root.iterchildren(_B + "process"):
            version._read_process(process)
        return version

    def _read_process(self, process: Element) -> None:
        flows: list[Element] = []
        for element in process.iter(*_FLOW_NODE_TAGS, _B + "sequenceFlow"):
            element_id = str(element.get("id", ""))
            if not element_id:
                continue
            if _local(element) == "sequenceFlow":
                flows.append(element)
            elif element_id not in self.kind:  # duplicate ids are a lint error; first wins
                self._read_node(element, element_id)
        defaults = {str(e.get("id", "")): e.get("default") for e in process.iter(*_FLOW_NODE_TAGS)}
        targets: dict[str, list[str]] = defaultdict(list)
        for flow in flows:
            source, target = str(flow.get("sourceRef", "")), str(flow.get("targetRef", ""))
            targets[source].append(target)
            conditions = list(flow.iterchildren(_B + "conditionExpression"))
            if conditions and defaults.get(source) != flow.get("id"):
                # The engine evaluates a gateway's conditions when the gateway is reached.
                reads = _expression_reads(conditions[0].text)
                self.condition_reads[source] = self.condition_reads.get(source, frozenset()) | reads
        self._link(process, targets)

    def _read_node(self, element: Element, element_id: str) -> None:
        kind = _local(element) or ""
        self.kind[element_id] = kind
        self.order[element_id] = len(self.order)
        self.containers[element_id] = tuple(
            str(a.get("id"))
            for a in reversed(list(element.iterancestors()))
            if _local(a) in CONTAINER_TAGS
        )
        if kind == "boundaryEvent" and element.get("attachedToRef"):
            self.attached_to[element_id] = str(element.get("attachedToRef"))
        code: frozenset[str] = frozenset()
        for timer in element.iter(*_TIMER_TAGS):
            code |= _expression_reads(timer.text)
        writes: frozenset[str] = frozenset()
        sure: frozenset[str] = frozenset()
        if kind == "scriptTask":
            scripts = list(element.iterchildren(_B + "script"))
            source = _norm(scripts[0].text) if scripts else ""
            tree = _parse(source, "exec")
            if isinstance(tree, ast.Module):
                code |= _loads(tree)
                writes, sure = _stores(tree), _unconditional_stores(tree)
            else:  # records what it might, and surely records nothing
                code |= _guess_names(source)
                writes = _guess_names(source)
        elif kind == "userTask":
            fields = [
                f
                for form in element.iterchildren(_B + "extensionElements")
                for f in form.iter(_C + "formField")
                if f.get("id")
            ]
            self.form_reads[element_id] = frozenset(str(f.get("id")) for f in fields)
            # A submission records every editable field (defaults fill the gaps).
            writes = sure = frozenset(
                str(f.get("id"))
                for f in fields
                if not any(c.get("name") == "readonly" for c in f.iter(_C + "constraint"))
            )
        if code:
            self.code_reads[element_id] = code
        self.writes[element_id], self.sure_writes[element_id] = writes, sure

    def _link(self, process: Element, targets: dict[str, list[str]]) -> None:
        for element in process.iter(*_FLOW_NODE_TAGS):
            element_id = str(element.get("id", ""))
            kind = _local(element)
            if self.kind.get(element_id) != kind:
                continue
            if element_id in self.attached_to:
                self.boundary[self.attached_to[element_id]].append(element_id)
            if kind in CONTAINER_TAGS and element.get("triggeredByEvent") != "true":
                # Entering a subprocess starts it; it finishes through its end events.
                starts = element.iterchildren(_B + "startEvent")
                self.after[element_id] = [str(s.get("id")) for s in starts if s.get("id")]
            elif kind == "endEvent":
                self.after[element_id] = self._after_end(element, targets)
            else:
                self.after[element_id] = list(dict.fromkeys(targets.get(element_id, [])))

    @staticmethod
    def _after_end(end: Element, targets: dict[str, list[str]]) -> list[str]:
        """Where the flow goes when an end event is reached: out of the enclosing subprocess;
        nowhere at process level or in an event subprocess, unless that one interrupted a
        subprocess, which then finishes."""
        parent = end.getparent()
        if parent is None or _local(parent) not in CONTAINER_TAGS:
            return []
        if parent.get("triggeredByEvent") == "true":
            starts = list(parent.iterchildren(_B + "startEvent"))
            interrupting = any(s.get("isInterrupting", "true") != "false" for s in starts)
            outer = parent.getparent()
            if not interrupting or outer is None or _local(outer) not in CONTAINER_TAGS:
                return []
            parent = outer
        return list(dict.fromkeys(targets.get(str(parent.get("id")), [])))

    def reach(self, position: Iterable[str], name: str) -> list[str]:
        """Nodes the incident can still reach from `position` with `name` as it holds it now,
        i.e. on a path where no node records `name` again first, in document order."""
        seen: set[str] = set()
        stack: list[str] = []

        def visit(nodes: Iterable[str]) -> None:
            for node in nodes:
                if node not in seen and node in self.kind:
                    seen.add(node)
                    stack.append(node)

        def activate(node: str) -> None:
            visit(self.boundary.get(node, ()))  # can fire while the node is active
            if name not in self.sure_writes.get(node, ()):
                visit(self.after.get(node, ()))

        for node in position:
            if node not in self.kind:
                continue
            for container in self.containers[node]:
                visit(self.boundary.get(container, ()))
            activate(node)
        while stack:
            activate(stack.pop())
        return sorted(seen, key=self.order.__getitem__)


# --- the policy ----------------------------------------------------------------------------------


def _aspects(aspects: Iterable[str]) -> str:
    return ", ".join(aspects)


def _where(containers: tuple[str, ...]) -> str:
    return f"subprocess {containers[-1]}" if containers else "the top level of the process"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class _Writer:
    element_id: str
    kind: str  # in the old version
    change: str  # "changed: form" or "removed"


class MovePolicy:
    """The move policy for one (old version, new version) pair; build it once, then call
    `assess` per incident. Raises safe_xml.UnsafeXmlError if either document will not parse."""

    def __init__(self, old_xml: bytes, new_xml: bytes) -> None:
        self.diff: ProcessDiff = diff_definitions(old_xml, new_xml)
        self._old = _Version.read(old_xml)
        self._new = _Version.read(new_xml)
        self._changes: dict[str, ElementChange] = self.diff.by_id()
        # Data recorded under the old version by steps whose meaning changed: name -> steps.
        self._stale: dict[str, list[_Writer]] = defaultdict(list)
        for change in self.diff.removed:
            self._add_stale(change.element_id, "removed")
        for change in self.diff.changed:
            meaning = [a for a in change.aspects if a in DATA_MEANING_ASPECTS]
            if meaning:
                self._add_stale(change.element_id, f"changed: {_aspects(meaning)}")
        # Data the new version's code reads and some step of it records (so not a helper, a
        # builtin or something the engine provides): candidates for missing data.
        code_reads: set[str] = set()
        for reads in [*self._new.code_reads.values(), *self._new.condition_reads.values()]:
            code_reads |= reads
        recorded: set[str] = set()
        for writes in self._new.writes.values():
            recorded |= writes
        self._recorded_reads = frozenset(code_reads & recorded)
        self._reach_cache: dict[tuple[bool, frozenset[str], str], list[str]] = {}
        self._cache: dict[tuple[frozenset[str], frozenset[str]], MoveAssessment] = {}

    def _add_stale(self, element_id: str, change: str) -> None:
        kind = self._old.kind.get(element_id, "")
        for name in self._old.writes.get(element_id, ()):
            self._stale[name].append(_Writer(element_id, kind, change))

    def assess(self, position: Collection[str], produced: Collection[str]) -> MoveAssessment:
        """Whether an incident waiting at `position` (element ids) and holding the data named
        in `produced` may move to the new version, and if not, why not."""
        where = frozenset(position)
        relevant = frozenset(produced) & (self._stale.keys() | self._recorded_reads)
        key = (where, relevant)
        found = self._cache.get(key)
        if found is None:
            reasons = self._position_reasons(where) + self._data_reasons(where, relevant)
            reasons = list(dict.fromkeys(reasons))
            found = MoveAssessment(can_move=not reasons, reasons=tuple(reasons))
            if len(self._cache) < 10_000:
                self._cache[key] = found
        return found

    # --- rule 2: where the incident waits

    def _sorted_position(self, position: frozenset[str]) -> list[str]:
        def rank(element_id: str) -> tuple[int, int, str]:
            if element_id in self._old.order:
                return (0, self._old.order[element_id], element_id)
            return (1, self._new.order.get(element_id, 0), element_id)

        return sorted(position, key=rank)

    def _blocking(self, element_id: str) -> list[str]:
        change = self._changes.get(element_id)
        if change is None:
            return []
        aspects = [a for a in change.aspects if a not in POSITION_IGNORED_ASPECTS]
        old_host = self._old.attached_to.get(element_id)
        if old_host != self._new.attached_to.get(element_id):
            aspects.append("attached to")
        return aspects

    def _position_reasons(self, position: frozenset[str]) -> list[str]:
        reasons: list[str] = []
        for element_id in self._sorted_position(position):
            waits = f"the incident waits at {element_id}"
            if element_id not in self._new.kind:
                reasons.append(f"{waits}, which the new version no longer has")
                continue
            if element_id not in self._old.kind:
                reasons.append(f"{waits}, which its current version does not have")
                continue
            if blocking := self._blocking(element_id):
                reasons.append(f"{waits}, which changed ({_aspects(blocking)})")
            old_path = self._old.containers[element_id]
            new_path = self._new.containers[element_id]
            if old_path != new_path:
                reasons.append(
                    f"{waits}, which moved from {_where(old_path)} to {_where(new_path)}"
                )
                continue
            for container in new_path:
                if blocking := self._blocking(container):
                    reasons.append(
                        f"{waits} inside {container}, which changed ({_aspects(blocking)})"
                    )
        return reasons

    # --- rules 3, 4 and 6: data read ahead

    def _reach(self, new: bool, position: frozenset[str], name: str) -> list[str]:
        key = (new, position, name)
        found = self._reach_cache.get(key)
        if found is None:
            found = (self._new if new else self._old).reach(position, name)
            if len(self._reach_cache) < 100_000:
                self._reach_cache[key] = found
        return found

    def _data_reasons(self, position: frozenset[str], held: frozenset[str]) -> list[str]:
        found: list[tuple[int, str, str]] = []  # (reader order, name, reason)
        for name in sorted(held & self._stale.keys()):
            found += self._stale_reads(position, name)
        for name in sorted(self._recorded_reads - held):
            found += self._missing_reads(position, name)
        return [reason for *_, reason in sorted(found)]

    def _reader(self, node: str) -> str:
        kind = self._new.kind[node]
        if kind in GATEWAY_TAGS:
            return f"gateway {node}"
        return {"scriptTask": "script task", "userTask": "user task"}.get(kind, kind) + f" {node}"

    def _stale_reads(self, position: frozenset[str], name: str) -> list[tuple[int, str, str]]:
        writers = self._stale[name]
        scripts = [w for w in writers if w.kind == "scriptTask"]
        found: list[tuple[int, str, str]] = []
        for node in self._reach(True, position, name):
            if name in self._new.condition_reads.get(node, ()):
                reads, by = "reads", writers  # rule 3: a route decided on old data
            elif name in self._new.code_reads.get(node, ()):
                reads, by = "reads", scripts  # rule 4: code running on a changed script's output
            elif name in self._new.form_reads.get(node, ()):
                reads, by = "prefills its form field", scripts
            else:
                continue
            if by:
                recorded = _and([f"{w.element_id} ({w.change})" for w in by])
                reason = (
                    f"{self._reader(node)} ahead {reads} {name}, which {recorded} "
                    "recorded under the old version"
                )
                found.append((self._new.order[node], name, reason))
        return found

    def _code_readers(self, new: bool, position: frozenset[str], name: str) -> list[str]:
        version = self._new if new else self._old
        return [
            node
            for node in self._reach(new, position, name)
            if name in version.condition_reads.get(node, ())
            or name in version.code_reads.get(node, ())
        ]

    def _missing_reads(self, position: frozenset[str], name: str) -> list[tuple[int, str, str]]:
        readers = self._code_readers(True, position, name)
        if not readers or self._code_readers(False, position, name):
            return []  # nothing reads it, or the old version would have read it missing too
        writers = [n for n in self._new.order if name in self._new.writes.get(n, ())]
        return [
            (
                self._new.order[node],
                name,
                f"{self._reader(node)} ahead reads {name}, which the incident does not hold "
                f"and no step on the way records (the new version records it at {_and(writers)})",
            )
            for node in readers
        ]


def assess_move(
    old_xml: bytes, new_xml: bytes, position: Collection[str], produced: Collection[str]
) -> MoveAssessment:
    """One-off convenience for MovePolicy(old_xml, new_xml).assess(position, produced)."""
    return MovePolicy(old_xml, new_xml).assess(position, produced)
