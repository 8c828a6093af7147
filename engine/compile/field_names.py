"""Unknown fields that look like a misspelt known one (`rf` for `ref`): valid, since unknown
fields are kept as they are, but most likely a mistake that changes what the workflow does."""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any

from pydantic import BaseModel

from engine.errors import Problem

# close enough to be a typo, far enough that Scenario's own extra fields (`label`,
# `description`, `position`, ...) are not taken for one
CUTOFF = 0.8


def misspelt_fields(model: BaseModel, path: str = "") -> list[Problem]:
    """Every unknown field of `model` and of the models it holds that is within a typo of a
    field its model knows, with the path to it and the name it most likely meant."""
    found: list[Problem] = []
    known = {(info.alias or name): name for name, info in type(model).model_fields.items()}
    unset = [alias for alias, name in known.items() if name not in model.model_fields_set]
    for key in model.model_extra or {}:
        close = get_close_matches(key, unset, n=1, cutoff=CUTOFF)
        if close:
            found.append(
                Problem(
                    f"unknown field `{key}` is kept as it is and not read; "
                    f"did you mean `{close[0]}`?",
                    path=_join(path, key),
                )
            )
    for alias, name in known.items():
        found += _inner(getattr(model, name), _join(path, alias))
    return found


def _inner(value: Any, path: str) -> list[Problem]:
    if isinstance(value, BaseModel):
        return misspelt_fields(value, path)
    if isinstance(value, list):
        found: list[Problem] = []
        for index, item in enumerate(value):
            found += _inner(item, f"{path}[{index}]")
        return found
    return []


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
