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


LIMIT_NAMES = ("max_nodes", "max_iterations", "expression_seconds", "max_value")


@dataclass(frozen=True, slots=True)
class Limits:
    """Nodes per job (clones of loop bodies included) and iterations per for-each."""

    max_nodes: int = 1_000_000
    max_iterations: int = 1_000_000
    # seconds an expression that can run long (see engine/compile/budget.py) may take
    expression_seconds: float = 5.0
    # characters of a string, items of a list or object, that an expression may produce
    max_value: int = 10_000_000

    def __post_init__(self) -> None:
        for name in LIMIT_NAMES:
            problem = limit_problem(name, getattr(self, name))
            if problem:
                raise ValueError(problem)

    def how_to_raise(self, name: str) -> str:
        return HOW_TO_RAISE.format(option=name.replace("_", "-"), name=name)

    def exceeded(self, name: str, needed: int, what: str) -> str:
        """The message for `what` needing `needed` where limit `name` allows less."""
        limit = getattr(self, name)
        noun = "node" if name == "max_nodes" else "iteration"
        per = "per job" if name == "max_nodes" else "per loop"
        how = self.how_to_raise(name)
        return (
            f"{what} needs {needed:,} {noun}s; the limit is {limit:,} {noun}"
            f"{'' if limit == 1 else 's'} {per} ({how})"
        )


def limit_problem(name: str, value: object) -> str | None:
    """Why `value` cannot be limit `name`, or None."""
    if name == "expression_seconds":
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            return f"`{name}` must be a number of seconds above 0, got `{value}`"
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"`{name}` must be a whole number of 1 or more, got `{value}`"
    return None
