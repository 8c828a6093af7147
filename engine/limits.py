"""What one job may use. A flow that needs more is refused before anything runs when its own
numbers say so (a for-each `count`), else its loop fails when it would expand past a limit.

The defaults are far above what a real Scenario workflow uses (Scenario's cloud allows 50
nodes a workflow): they stop a runaway flow, not a large one. Raise them with `--max-nodes` /
`--max-iterations` (run, serve), `[limits]` in the configuration file, or
`Engine(limits=Limits(...))`.
"""

from __future__ import annotations

from dataclasses import dataclass

HOW_TO_RAISE = (
    "raise it with --{option}, `{name} = ...` under [limits] in the configuration file, "
    "or Engine(limits=Limits({name}=...))"
)


LIMIT_NAMES = ("max_nodes", "max_iterations")


@dataclass(frozen=True, slots=True)
class Limits:
    """Nodes per job (clones of loop bodies included) and iterations per for-each."""

    max_nodes: int = 1_000_000
    max_iterations: int = 1_000_000

    def __post_init__(self) -> None:
        for name in LIMIT_NAMES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a whole number of 1 or more, got `{value}`")

    def exceeded(self, name: str, needed: int, what: str) -> str:
        """The message for `what` needing `needed` where limit `name` allows less."""
        limit = getattr(self, name)
        unit = "nodes per job" if name == "max_nodes" else "iterations per loop"
        how = HOW_TO_RAISE.format(option=name.replace("_", "-"), name=name)
        return f"{what} needs {needed:,} {unit.split()[0]}; the limit is {limit:,} {unit} ({how})"
