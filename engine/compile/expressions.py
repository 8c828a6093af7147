"""Expressions: CEL (Scenario's language for transforms and conditions) and jinja2 templates.

An expression containing `{{` or `{%` is a jinja2 template rendered in a sandbox; anything else
is CEL, evaluated by the Rust-backed `common-expression-language` package with Scenario's custom
`trim(s)` and `slice(list, start, end)` added. Each expression is compiled once per run.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from engine.compile.cel_import import cel, stdlib
from engine.errors import ExpressionEvaluationError, ExpressionSyntaxError

_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


def _trim(value: str) -> str:
    return value.strip()


def _slice(value: Any, start: int, end: int | None = None) -> Any:
    if not isinstance(value, list | str):
        raise TypeError(f"slice() takes a list or a string, not {type(value).__name__}")
    return value[int(start) : None if end is None else int(end)]


# the functions an expression may call besides CEL's own: the library's extensions (as
# `stdlib.add_stdlib_to_context` registers them, a later one replacing an earlier of the same
# name), then ours
_CEL_FUNCTIONS: dict[str, Any] = {
    **{
        name: function
        for library in stdlib.EXTENSIONS.values()
        for name, function in library.items()
    },
    "trim": _trim,
    "slice": _slice,
}


def _cel_context(called: Iterable[str]) -> cel.Context:
    """A context with the functions of `_CEL_FUNCTIONS` a program calls (`called`, by the
    name after the last dot, as `Program.functions` gives them): the library copies every
    registered function into each evaluation, and a context holding all 47 made a one-line
    expression cost 3.7 µs to run, against 0.6 µs with none."""
    names = set(called)
    context = cel.Context()
    for name, function in _CEL_FUNCTIONS.items():
        if name.rpartition(".")[2] in names:
            context.add_function(name, function)
    return context


MAX_VALUE = 10_000_000  # characters or items an expression may produce (Limits.max_value)
# Above these sizes of its inputs (characters and items, counted through nested values), an
# expression is evaluated in a worker process under the time budget (see engine/compile/budget.py)
INLINE_ITEMS_LOOPING = 256  # for a CEL comprehension (`map`, `filter`, `exists`, ...)
INLINE_ITEMS = 65_536  # for any expression
INLINE_SOURCE = 2000  # characters of an expression above which it is always evaluated apart
# The work an inline expression may reach, as (references + 1)² × size^(1 + multipliers):
# `references` the names it reads (each may copy an input: `s + s + s`), `size` its inputs'
# characters and items, `multipliers` its comprehensions and the calls and filters that can
# multiply their input's size (`join`, `replace`). Past it, the expression runs apart.
INLINE_WORK = 1 << 24
# and as (references + 1) × size: reading a large input costs about a microsecond an item
# wherever it goes (a call of the CEL library converts its arguments item by item)
INLINE_READS = 1 << 18

current_max_value: ContextVar[int] = ContextVar("flowgraph_max_value", default=MAX_VALUE)


@dataclass(slots=True)
class Expression:
    """A compiled expression, ready to evaluate against a node's resolved inputs."""

    source: str
    language: str  # "cel" or "jinja"
    _program: Any
    # One context per expression, refilled before each evaluation: evaluation is synchronous
    # and a node's variables are always the same names, so nothing stale can be read. For a
    # template, its renderer (see `templates.renderer`).
    _context: Any = None
    # a CEL comprehension or a jinja template that computes (statements, filters, calls,
    # operators): its cost can grow faster than its inputs
    may_loop: bool = False
    # a comprehension over a list written in the expression, a function whose cost does not
    # show in its inputs' size (`lists.range`, `distinct`, `matches`, `sets.*`), or a long
    # source
    always_apart: bool = False
    # the inputs' size (characters and items) up to which it runs inline (see INLINE_WORK)
    inline_size: int = INLINE_ITEMS
    max_value: int = MAX_VALUE

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate against `variables`; raises ExpressionEvaluationError with the message."""
        try:
            if self.language == "jinja":
                token = current_max_value.set(self.max_value)
                if self._context is None:  # jinja2 is imported: the template was compiled
                    from engine.compile.templates import renderer

                    self._context = renderer(self._program)
                try:
                    result: Any = self._context(variables)
                finally:
                    current_max_value.reset(token)
            else:
                if self._context is None:
                    self._context = _cel_context(self._program.functions())
                self._context.update(dict(variables))
                result = self._program.execute(self._context)
                if type(result) not in _JSON_SCALARS:
                    result = json_value(result)
            sized = type(result) is str or type(result) is list or type(result) is dict
            if sized and len(result) > self.max_value:
                raise ValueError(
                    f"its value has {len(result):,} characters or items; the limit is "
                    f"{self.max_value:,} (max_value)"
                )
            if (type(result) is list or type(result) is dict) and _larger_than(
                (result,), self.max_value
            ):
                raise ValueError(
                    f"its value holds more than {self.max_value:,} characters or items, nested "
                    f"ones counted; the limit is {self.max_value:,} (max_value)"
                )
            return result
        except Exception as error:  # every library error becomes one clear message
            raise ExpressionEvaluationError(
                f"expression `{self.source}` failed: {_clean_message(error)}"
            ) from None

    def runs_apart(self, variables: Mapping[str, Any]) -> bool:
        """Whether evaluating against `variables` can take long enough to need the time
        budget: a computing template, a function whose cost does not show in its inputs,
        inputs larger than the expression's `inline_size` (see INLINE_WORK: a comprehension
        over more than 256 items, any expression over more than 65,536 characters and items,
        less for one that reads its inputs many times or multiplies their size)."""
        return inputs_exceed(inline_share((self,)), variables)

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
    if kind is dict:  # a CEL map has no order: its keys are sorted, so runs agree
        pairs = sorted(((_json_key(key), item) for key, item in value.items()), key=_first)
        result = {key: json_value(item) for key, item in pairs}
        if len(result) < len(pairs):  # 1 and "1", or true and "true": one JSON key
            raise TypeError(f"map keys {_colliding(value)} are the same key in JSON")
        return result
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


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _colliding(value: dict[Any, Any]) -> str:
    """Two keys of `value` that JSON writes the same, as CEL writes them."""
    seen: dict[str, Any] = {}
    for key in value:
        other = seen.setdefault(_json_key(key), key)
        if other is not key:
            return " and ".join(_cel_literal(k) for k in (other, key))
    raise AssertionError("no two keys collide")


def _cel_literal(key: Any) -> str:
    if isinstance(key, str):
        return json.dumps(key)
    return ("true" if key else "false") if isinstance(key, bool) else str(key)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float):
        return str(key)
    raise TypeError(f"a map key of type `{type(key).__name__}` cannot be a JSON key")


def _larger_than(values: Any, limit: int) -> bool:
    """Whether `values` hold more than `limit` characters and items, nested ones and a
    mapping's keys counted."""
    total = 0
    stack = list(values)
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            total += len(value)
        elif kind is list:
            total += len(value)
            stack.extend(value)
        elif kind is dict:
            total += len(value)
            stack.extend(value)
            stack.extend(value.values())
        if total > limit:
            return True
    return False


def inline_share(expressions: Sequence[Expression]) -> int | None:
    """The inputs' size up to which a node's expressions run inline, each with its share of
    what one may do inline (a logic node's ten cases, a tenth each); None when one of them
    always runs apart, 0 for none at all."""
    if not expressions:
        return INLINE_ITEMS
    limit = INLINE_ITEMS
    for expression in expressions:
        if expression.always_apart or (expression.may_loop and expression.language == "jinja"):
            return None
        limit = min(limit, expression.inline_size)
    return limit // len(expressions)


def inputs_exceed(share: int | None, variables: Mapping[str, Any]) -> bool:
    """Whether `variables` are too large for expressions with this `inline_share`."""
    return share is None or _larger_than(variables.values(), share)


def inline_size(references: int, multipliers: int, *, calls: int = 0, looping: bool) -> int:
    """The inputs' size (characters and items) up to which an expression that reads
    `references` names, makes `calls` calls (or applies filters) and has `multipliers`
    (comprehensions, size-multiplying calls) keeps within INLINE_WORK and INLINE_READS; at
    most 256 with a comprehension, 65,536 in any case."""
    largest = min(
        (INLINE_WORK / (references + 1) ** 2) ** (1 / (1 + multipliers)),
        INLINE_READS / (references + calls + 1),
    )
    return min(INLINE_ITEMS_LOOPING if looping else INLINE_ITEMS, int(largest))


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
    return Expression(
        cached.source,
        cached.language,
        cached._program,
        may_loop=cached.may_loop,
        always_apart=cached.always_apart,
        inline_size=cached.inline_size,
    )


_compiled: dict[str, Expression] = {}
_free_names: dict[str, frozenset[str]] = {}
_CACHE_LIMIT = 10_000

# CEL string literals (removed before looking for macros) and the single-variable macros, whose
# first argument names the element: `xs.map(x, x + 1)`, `xs.exists(x, x > 2)`.
# CEL's string literals and comments, read left to right in one pass (whichever starts first
# is what it is): raw strings (`r'...'`) have no escapes, the others take `\\x`.
_CEL_LITERAL_OR_COMMENT = re.compile(
    r"""//[^\n]*"""
    r"""|(?:[bB]?[rR]|[rR][bB])(?:'{3}[\s\S]*?'{3}|"{3}[\s\S]*?"{3}|'[^'\n]*'|"[^"\n]*")"""
    r"""|[bB]?(?:'{3}(?:\\[\s\S]|[\s\S])*?'{3}|"{3}(?:\\[\s\S]|[\s\S])*?"{3}"""
    r"""|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")"""
)
_CEL_LITERAL_LOOP = re.compile(r"\]\s*\.\s*(?:all|exists|exists_one|existsOne|map|filter)\s*\(")
_CEL_ANY_MACRO = re.compile(r"\.\s*(?:all|exists|exists_one|existsOne|map|filter)\s*\(")
# calls whose result can be many times their input (`xs.join(s)`, `s.replace('a', s)`, or
# as functions: `join(xs, s)`, `replace(s, 'a', s)`; `strings.quote` doubles a backslash,
# `base64.encode` makes four characters of three)
_CEL_GROWING_CALL = re.compile(r"(?<!\w)(?:join|replace|quote|encode)\s*\(")
# any call: each converts what it is given item by item (a chain of `.sort()` reads its list
# once per call)
_CEL_CALL = re.compile(r"(?<!\w)[A-Za-z_]\w*\s*\(")
# calls whose cost does not show in their inputs' size: `lists.range(n)` (n items),
# `distinct` (quadratic), `matches` (a regular expression compiled at each call), the `sets`
# functions (quadratic), a shift by a large number of bits
_CEL_UNBOUNDED_CALL = re.compile(
    r"\b(?:range|distinct|matches|lastIndexOf|bitShiftLeft|bitShiftRight)\s*\(|\bsets\s*\."
)
# a name that is read, not a function called: each may copy an input (a field's name is
# counted too, and `.xs`, which CEL reads as a name)
_CEL_NAME = re.compile(r"(?<!\w)[A-Za-z_]\w*(?!\w)(?!\s*\()")
_CEL_MACRO = re.compile(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)

# CEL's type names (`type(x) == string`): not variables
CEL_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "dyn"}
)
# CEL's function namespaces (`optional.of(1)`, `math.greatest(a, b)`): not variables
_CEL_NAMESPACE_CALL = re.compile(
    r"(?<![.\w])(optional|math|strings|base64|sets|lists|encoders)\s*\.\s*[A-Za-z_]\w*\s*\("
)


def _cel_code(source: str) -> str:
    """CEL source without its string literals (each left as `""`) and comments: what the
    regexes look at."""
    return _cel_reading(source)[0]


def _cel_reading(source: str) -> tuple[str, int]:
    """The source without its literals and comments, and the characters of its literals."""
    written = 0

    def blank(match: re.Match[str]) -> str:
        nonlocal written
        if match.group(0).startswith("//"):
            return ""
        written += len(match.group(0))
        return '""'

    return _CEL_LITERAL_OR_COMMENT.sub(blank, source), written


def _free_variables(expression: Expression) -> frozenset[str]:
    if expression.language == "jinja":
        from engine.compile.templates import template_variables

        return template_variables(expression.source)
    code = _cel_code(expression.source)
    bound = set(_CEL_MACRO.findall(code)) | set(_CEL_NAMESPACE_CALL.findall(code))
    return frozenset(set(expression._program.variables()) - bound - CEL_TYPE_NAMES)


def _compile(source: str) -> Expression:
    if is_template(source):
        # jinja2 only when a flow has one
        from engine.compile.templates import compile_template, template_profile

        template = compile_template(source)
        computes, references, multipliers, calls = template_profile(source)
        return Expression(
            source,
            "jinja",
            template,
            may_loop=computes,
            always_apart=len(source) > INLINE_SOURCE,
            inline_size=inline_size(references, multipliers, calls=calls, looping=False),
        )
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as error:
        raise ExpressionSyntaxError(_cel_syntax_message(source, str(error))) from None
    # counted in the code alone (literals and comments read out in one pass, left to right);
    # values written in the expression count as inputs: their characters, and an item for
    # each `,` or `:` of a list or map written out
    code, written = _cel_reading(source)
    written += code.count(",") + code.count(":")
    macros = len(_CEL_ANY_MACRO.findall(code))
    growing = len(_CEL_GROWING_CALL.findall(code))
    names = len(_CEL_NAME.findall(code))
    calls = len(_CEL_CALL.findall(code))
    room = inline_size(names, macros + growing, calls=calls, looping=macros > 0) - written
    apart = (
        room < 0
        or len(source) > INLINE_SOURCE
        or bool(_CEL_LITERAL_LOOP.search(code) or _CEL_UNBOUNDED_CALL.search(code))
    )
    return Expression(
        source,
        "cel",
        program,
        may_loop=macros > 0,
        always_apart=apart,
        inline_size=max(room, 0),
    )


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
