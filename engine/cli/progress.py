"""The live progress bar a run shows on a terminal, fed by the engine's transitions."""

from __future__ import annotations

import time
from collections import Counter
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from engine.protocols import NodeStatus, Transition

if TYPE_CHECKING:
    from engine.api import JobRun


class ProgressDisplay:
    """A rich progress bar on stderr, fed by the engine's transitions: nodes done, counts per
    node type, loop progress (iterations done / total), gates waiting, elapsed time."""

    def __init__(self, console: Console, job: JobRun, *, refresh: float = 0.1) -> None:
        self.job = job
        self.refresh = refresh
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} nodes"),
            TextColumn("{task.fields[detail]}", markup=False),  # loop ids are user text
            GenerationColumn(job),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("running", total=1, detail="")
        self.types: Counter[str] = Counter()  # finished nodes by type
        self.running = 0  # nodes processing now, loops apart (waiting gates included)
        self._last = 0.0

    def __call__(self, transition: Transition) -> None:
        scheduler = self.job.scheduler
        instance = scheduler.instances.get(transition.node_id or "")
        # a gate's own update (processing -> processing) is not a start; a loop is shown apart
        if instance is not None and transition.from_status != transition.to_status:
            if instance.template.type != "for-each":
                if transition.to_status == "processing":
                    self.running += 1
                elif transition.from_status == "processing":
                    self.running -= 1
            if transition.to_status == "success":
                self.types[instance.template.type] += 1
        now = time.monotonic()
        if now - self._last < self.refresh and transition.node_id is not None:
            return
        self._last = now
        self.update()

    def detail(self) -> str:
        """The text beside the bar: per-type counts, loops, gates."""
        scheduler = self.job.scheduler
        done = ", ".join(f"{t} {n}" for t, n in self.types.most_common(4))
        waiting = len(scheduler.waiting) + len(scheduler.parked)  # parked: at a child's gates
        running = self.running - waiting
        parts = [f"done: {done}" if done else "", f"running: {running}" if running > 0 else ""]
        loops = [
            i
            for i in scheduler.instances.values()
            if i.template.type == "for-each"
            and i.iterations is not None
            and i.status is NodeStatus.PROCESSING
        ][:2]
        for loop in loops:
            unfinished = {
                i.scope.index
                for i in scheduler.instances.values()
                if i.scope.loop is loop and not i.status.terminal
            }
            total = len(loop.iterations or [])
            parts.append(f"loop {loop.id}: {total - len(unfinished)}/{total} iterations")
        if waiting:
            parts.append(f"{waiting} gate{'s' if waiting > 1 else ''} waiting")
        return " | ".join(p for p in parts if p)

    def update(self) -> None:
        scheduler = self.job.scheduler
        self.progress.update(
            self.task,
            total=len(scheduler.instances),
            completed=scheduler.terminal_count,
            detail=self.detail(),
        )

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.update()
        self.progress.__exit__(kind, value, traceback)


class GenerationColumn(ProgressColumn):
    """How far the remote jobs of the model calls in flight have come, as their executors
    report it (the scenario executor: each inference job's `progress`); read at each refresh,
    since a remote job progresses without any transition of the flow."""

    def __init__(self, job: JobRun) -> None:
        super().__init__()
        self.job = job

    def render(self, task: Task) -> Text:
        try:
            reported = list(self.job.runner.call_progress.values())
        except RuntimeError:  # changed while read, from the run's thread: the next refresh
            return Text("")
        if not reported:
            return Text("")
        average = sum(reported) / len(reported)
        return Text(f"generating {len(reported)}: {average:.0%}", style="yellow")
