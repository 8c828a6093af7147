"""jinja2 templates (`{{ }}`, `{% %}`) as expressions: a sandbox that refuses values past the
limit. Imported only when a flow holds a template (jinja2 takes a while to import)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jinja2
from jinja2 import meta, pass_context
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

from engine.compile.expressions import current_max_value
from engine.errors import ExpressionSyntaxError


class _Sandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox, with `*`, `**` and `%` checked before they run (and so never
    folded at compile time): `'a' * 400000000`, `2 ** 100000000` and `'%0300000000d' % 1` are
    refused, not made. Filters take the template's context, so none is folded at compile time
    either (`'a' | center(300000000)` would otherwise be made while the flow compiles)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _unfoldable(f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limit = current_max_value.get()
        if operator == "%":
            if isinstance(left, str):
                widths = [int(n) for n in _FORMAT_WIDTH.findall(left) if n]
                args = right if isinstance(right, tuple) else (right,)
                widths += [a for a in args if isinstance(a, int) and "*" in left]
                if any(w > limit for w in widths):
                    raise SecurityError(
                        f"`%` would pad a value to {max(widths):,} characters; the limit is "
                        f"{limit:,} (max_value)"
                    )
            return left % right
        if operator == "*":
            for sized, times in ((left, right), (right, left)):
                sequence = isinstance(sized, str | list | tuple) and isinstance(times, int)
                if sequence and len(sized) * times > limit:
                    raise SecurityError(
                        f"`*` would make a value of {len(sized) * times:,} characters or "
                        f"items; the limit is {limit:,} (max_value)"
                    )
            return left * right
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            bits = max(abs(left).bit_length() - 1, 0) * right
            if bits > 4 * limit:  # a number of more digits than the limit allows
                raise SecurityError(f"`**` would make a number of about {bits:,} bits")
        return left**right


_FORMAT_WIDTH = re.compile(r"%[#0\- +]*(\d*)(?:\.(?:\d*))?")


def _unfoldable(function: Any) -> Any:
    """`function` as a filter that takes the context: jinja2 never runs those at compile time.
    Its own pass-argument (environment, eval context) is still given to it."""
    passed = _PassArg.from_obj(function)
    if passed is _PassArg.context:
        return function

    @pass_context
    def filtered(context: Any, *args: Any, **kwargs: Any) -> Any:
        if passed is _PassArg.environment:
            return function(context.environment, *args, **kwargs)
        if passed is _PassArg.eval_context:
            return function(context.eval_ctx, *args, **kwargs)
        return function(*args, **kwargs)

    return filtered


@cache
def sandbox() -> _Sandbox:
    """The one sandbox every template compiles in."""
    return _Sandbox(autoescape=False, undefined=jinja2.StrictUndefined)


def compile_template(source: str) -> jinja2.Template:
    """The template; raises ExpressionSyntaxError naming the line."""
    try:
        return sandbox().from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise ExpressionSyntaxError(
            f"template `{source}` does not parse at line {error.lineno}: {error.message}"
        ) from None


def template_variables(source: str) -> frozenset[str]:
    """The names a template reads: those it neither sets nor takes from the sandbox's globals."""
    environment = sandbox()
    parsed = environment.parse(source)
    return frozenset(meta.find_undeclared_variables(parsed) - set(environment.globals))
