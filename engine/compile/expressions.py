"""Expressions: CEL (Scenario's language for transforms and conditions) and jinja2 templates.

An expression containing `{{` or `{%` is a jinja2 template rendered in a sandbox; anything else
is CEL, evaluated by the Rust-backed `common-expression-language` package with Scenario's custom
`trim(s)` and `slice(list, start, end)` added. Each expression is compiled once per run.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import cel
import jinja2
from cel import stdlib
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import ExpressionEvaluationError, ExpressionSyntaxError

_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


def _trim(value: str) -> str:
    return value.strip()


def _slice(value: Any, start: int, end: int | None = None) -> Any:
    if not isinstance(value, list | str):
        raise TypeError(f"slice() takes a list or a string, not {type(value).__name__}")
    return value[int(start) : None if end is None else int(end)]


def _cel_context() -> cel.Context:
    context = cel.Context()
    stdlib.add_stdlib_to_context(context)
    context.add_function("trim", _trim)
    context.add_function("slice", _slice)
    return context


_jinja = ImmutableSandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined)


@dataclass(slots=True)
class Expression:
    """A compiled expression, ready to evaluate against a node's resolved inputs."""

    source: str
    language: str  # "cel" or "jinja"
    _program: Any
    # One context per expression, refilled before each evaluation: evaluation is synchronous
    # and a node's variables are always the same names, so nothing stale can be read.
    _context: Any = None

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate against `variables`; raises ExpressionEvaluationError with the message."""
        try:
            if self.language == "jinja":
                return self._program.render(**variables)
            if self._context is None:
                self._context = _cel_context()
            self._context.update(dict(variables))
            result = self._program.execute(self._context)
            return result if type(result) in _JSON_SCALARS else json_value(result)
        except Exception as error:  # every library error becomes one clear message
            raise ExpressionEvaluationError(
                f"expression `{self.source}` failed: {_clean_message(error)}"
            ) from None

    def variables(self) -> frozenset[str]:
        """The names the expression reads from its variables (the node's inputs): for CEL the
        identifiers not bound by a macro (`xs.map(x, ...)` binds `x`), for a template the names
        it neither sets nor takes from the sandbox's globals."""
        names = _free_names.get(self.source)
        if names is None:
            names = _free_variables(self)
            if len(_free_names) < _CACHE_LIMIT:
                _free_names[self.source] = names
        return names


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_value(value: Any) -> Any:
    """A CEL value as JSON, by CEL's JSON mapping: a duration is `"1.5s"`, a timestamp RFC 3339,
    bytes base64, map keys strings, an optional its value or null. A node's output is JSON."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is list or kind is tuple:
        return [json_value(item) for item in value]
    if kind is dict:
        return {_json_key(key): json_value(item) for key, item in value.items()}
    if isinstance(value, timedelta):
        seconds = f"{value.total_seconds():.9f}".rstrip("0").rstrip(".")
        return f"{seconds}s"
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if kind.__name__ == "OptionalValue":
        return json_value(value.value()) if value.has_value() else None
    raise TypeError(f"a value of type `{kind.__name__}` cannot be a node's output (not JSON)")


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float):
        return str(key)
    raise TypeError(f"a map key of type `{type(key).__name__}` cannot be a JSON key")


def is_template(source: str) -> bool:
    return "{{" in source or "{%" in source


def compile_expression(source: str) -> Expression:
    """Compile CEL or a jinja2 template; raises ExpressionSyntaxError naming the position.

    Compiled programs are shared between identical sources (they hold no state); each call
    gets its own Expression, whose evaluation context belongs to one node.
    """
    cached = _compiled.get(source)
    if cached is None:
        cached = _compile(source)
        if len(_compiled) < _CACHE_LIMIT:
            _compiled[source] = cached
    return Expression(cached.source, cached.language, cached._program)


_compiled: dict[str, Expression] = {}
_free_names: dict[str, frozenset[str]] = {}
_CACHE_LIMIT = 10_000

# CEL string literals (removed before looking for macros) and the single-variable macros, whose
# first argument names the element: `xs.map(x, x + 1)`, `xs.exists(x, x > 2)`.
_CEL_STRING = re.compile(
    r"""[rRbB]{0,2}("{3}[\s\S]*?"{3}|'{3}[\s\S]*?'{3}|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')"""
)
_CEL_MACRO = re.compile(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)

# CEL's function namespaces (`optional.of(1)`, `math.greatest(a, b)`): not variables
_CEL_NAMESPACE_CALL = re.compile(
    r"(?<![.\w])(optional|math|strings|base64|sets|lists|encoders)\s*\.\s*[A-Za-z_]\w*\s*\("
)

def _free_variables(expression: Expression) -> frozenset[str]:
    if expression.language == "jinja":
        parsed = _jinja.parse(expression.source)
        return frozenset(meta.find_undeclared_variables(parsed) - set(_jinja.globals))
    code = _CEL_STRING.sub('""', expression.source)
    bound = set(_CEL_MACRO.findall(code)) | set(_CEL_NAMESPACE_CALL.findall(code))
    return frozenset(set(expression._program.variables()) - bound)


def _compile(source: str) -> Expression:
    if is_template(source):
        try:
            return Expression(source, "jinja", _jinja.from_string(source))
        except jinja2.TemplateSyntaxError as error:
            raise ExpressionSyntaxError(
                f"template `{source}` does not parse at line {error.lineno}: {error.message}"
            ) from None
    try:
        return Expression(source, "cel", cel.compile(source))
    except (ValueError, RuntimeError) as error:
        raise ExpressionSyntaxError(_cel_syntax_message(source, str(error))) from None


def _cel_syntax_message(source: str, raw: str) -> str:
    match = _CEL_POSITION.search(raw)
    if match:
        line, column, detail = match.groups()
        where = f"line {line}, column {column}"
        return f"expression `{source}` does not parse at {where}: {detail.strip()}"
    return f"expression `{source}` does not parse: {raw.splitlines()[0] if raw else 'syntax error'}"


def _clean_message(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    if "Undefined variable or function" in text:
        name = re.search(r"'([^']+)'", text)
        if name:
            return (
                f"unknown variable or function `{name.group(1)}` "
                "(variables are the node's input names)"
            )
    return text.splitlines()[0]
