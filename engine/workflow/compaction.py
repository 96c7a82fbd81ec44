"""Keep a workflow's task tree bounded.

SpiffWorkflow appends a new branch to the tree for every pass through a loop.
Past a depth of ~1000 its iterators stop descending (it then believes the
workflow is complete) and its recursive helpers overflow the stack.  Our
history lives in the event table, so the finished part of the tree is only
needed where the engine still looks at it:

* the immediate parent of every unfinished task (tasks inherit data from it
  and joins inspect it), and
* every finished task where branches that are still alive fork, so that
  ancestry between live branches keeps its shape.

Everything else that is finished is dropped; chains of finished tasks are
spliced out so that a loop's 2,000th pass looks like its first.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState


def compact_task_tree(workflow: Any) -> int:
    """Drop finished tasks that nothing can look at again; return how many."""
    if workflow.is_completed():
        return 0
    tasks: dict[UUID, Any] = workflow.tasks
    root = workflow.task_tree
    alive = _subtrees_with_unfinished_tasks(root)
    removed = 0
    stack = [root]
    while stack:
        task = stack.pop()
        kept_children: list[UUID] = []
        for child_id in list(task._children):
            child = tasks.get(child_id)
            if child is None:
                continue
            if child_id not in alive:
                removed += _drop_subtree(workflow, child)
                continue
            child = _skip_finished_chain(workflow, task, child, alive)
            kept_children.append(child.id)
            stack.append(child)
        task._children = kept_children
    if workflow.last_task is not None and workflow.last_task.id not in tasks:
        workflow.last_task = None
    return removed


def _subtrees_with_unfinished_tasks(root: Any) -> set[UUID]:
    """Ids of tasks whose subtree holds at least one unfinished task (iteratively)."""
    order: list[Any] = []
    stack = [root]
    workflow = root.workflow
    while stack:
        task = stack.pop()
        order.append(task)
        stack.extend(workflow.tasks[c] for c in task._children if c in workflow.tasks)
    alive: set[UUID] = set()
    for task in reversed(order):
        if not task.has_state(TaskState.FINISHED_MASK) or any(c in alive for c in task._children):
            alive.add(task.id)
    return alive


def _skip_finished_chain(workflow: Any, parent: Any, child: Any, alive: set[UUID]) -> Any:
    """Splice out finished single-child links below `parent`; return the new child."""
    while _is_removable_link(workflow, child, alive):
        (grandchild_id,) = [c for c in child._children if c in alive]
        for dead_id in [c for c in child._children if c != grandchild_id]:
            dead = workflow.tasks.get(dead_id)
            if dead is not None:
                _drop_subtree(workflow, dead)
        grandchild = workflow.tasks[grandchild_id]
        del workflow.tasks[child.id]
        grandchild._parent = parent.id
        child = grandchild
    return child


def _is_removable_link(workflow: Any, task: Any, alive: set[UUID]) -> bool:
    if not task.has_state(TaskState.FINISHED_MASK):
        return False
    live_children = [workflow.tasks[c] for c in task._children if c in alive]
    if len(live_children) != 1:
        return False
    # The direct parent of an unfinished task stays: data and joins read it.
    return bool(live_children[0].has_state(TaskState.FINISHED_MASK))


def _drop_subtree(workflow: Any, task: Any) -> int:
    removed = 0
    stack = [task]
    while stack:
        current = stack.pop()
        stack.extend(workflow.tasks[c] for c in current._children if c in workflow.tasks)
        workflow.tasks.pop(current.id, None)
        # A finished call/subprocess task owns a finished sub-workflow: drop it too.
        workflow.top_workflow.subprocesses.pop(current.id, None)
        removed += 1
    return removed
