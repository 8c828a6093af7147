"""jinja2 templates (`{{ }}`, `{% %}`) as expressions: a sandbox that refuses values past the
limit. Imported only when a flow holds a template (jinja2 takes a while to import)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import jinja2
from jinja2 import meta, nodes, pass_context
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
    except (SyntaxError, RecursionError, MemoryError):  # from Python, compiling jinja2's code
        raise ExpressionSyntaxError(
            f"template `{source}` is nested too deeply to compile (about 100 levels of "
            "operators or parentheses at most)"
        ) from None


def renderer(template: jinja2.Template) -> Callable[[Mapping[str, Any]], str]:
    """`template.render(**variables)` as a function of `variables`: what `Template.render`
    does, less the merging of the template's globals (a ChainMap of the environment's and the
    template's) into a new dict at every call: here merged once. A one-line prompt template
    took 5.1 µs to render that way, 1.2 µs this way. The context is the same: the globals, the
    variables over them. An input named `self` is refused, as `render(**variables)` refused it
    (jinja2 gives that name to the template itself), with a message that says so."""
    environment = template.environment
    make_context = environment.context_class
    globals_ = dict(template.globals)
    name, blocks, root = template.name, template.blocks, template.root_render_func

    def render(variables: Mapping[str, Any]) -> str:
        if "self" in variables:
            raise TypeError("a template cannot read an input named `self` (jinja2's own name)")
        context = make_context(environment, {**globals_, **variables}, name, blocks, globals_)
        try:
            return environment.concat(root(context))
        except Exception:
            environment.handle_exception()  # raises it again, its traceback in template terms
            raise  # not reached

    return render


def template_variables(source: str) -> frozenset[str]:
    """The names a template reads: those it neither sets nor takes from the sandbox's globals."""
    environment = sandbox()
    parsed = environment.parse(source)
    return frozenset(meta.find_undeclared_variables(parsed) - set(environment.globals))


# What a template may hold and still run inline (see `template_profile`): reading its
# inputs, literals, comparisons, concatenation and plain arithmetic (not `*`, `**` or `%`,
# which can make values far larger than their operands), and these filters and tests, whose
# cost and result grow at most with their input, given literal arguments of at most
# `_ARGUMENT_CHARACTERS` characters (`_GROWING_ARGUMENT` for the filters that can multiply
# their input's size: a separator of a megabyte joined between 65,536 items is 64 GB) or
# numbers up to `_ARGUMENT_NUMBER`, and no such filter applied to the result of another.
_INLINE_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Concat,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Div,
    nodes.FloorDiv,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
    nodes.Filter,
    nodes.Test,
)
# the filters that read an `attribute` of each item: one plain name each, not a path
_ATTRIBUTE_FILTERS = frozenset({"dictsort", "max", "min", "sort", "sum", "unique"})
_SIMPLE_ATTRIBUTE = re.compile(r"\w{1,32}")
_ARGUMENT_CHARACTERS = 256
_GROWING_ARGUMENT = 16
_ARGUMENT_NUMBER = 1000
LINEAR_FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "first",
        "float",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "max",
        "min",
        "replace",
        "reverse",
        "round",
        "safe",
        "sort",
        "string",
        "sum",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "wordcount",
    }
)
# the linear filters that can make their result several times their input: `join` and
# `replace` by their arguments, `escape` by entities, `string`, `list`, `items` and
# `dictsort` by the text of a value's `repr` (a character can be written as 14)
GROWING_FILTERS = frozenset(
    {"dictsort", "e", "escape", "items", "join", "list", "replace", "string"}
)
_CHEAP_TESTS = frozenset(
    {
        "boolean",
        "defined",
        "divisibleby",
        "eq",
        "equalto",
        "even",
        "false",
        "float",
        "ge",
        "gt",
        "in",
        "integer",
        "iterable",
        "le",
        "lower",
        "lt",
        "mapping",
        "ne",
        "none",
        "number",
        "odd",
        "sameas",
        "sequence",
        "string",
        "true",
        "undefined",
        "upper",
    }
)


def template_profile(source: str) -> tuple[bool, int, int, int]:
    """What decides where a template runs (see `Expression.runs_apart`): whether it
    computes, the names it reads, its filters that can multiply their input's size, and its
    filters and tests (each reads what it is given: `xs | sort | sort ...`).

    A template computes, and so always runs under the time budget, when it holds a statement
    (`{% ... %}`), a call (`range(...)`, a method), `*`, `**` or `%`, a filter or test that is
    not among the linear ones or takes an argument that is not a small literal (`'a' |
    center(n)`, `'%09999999d' | format(1)`, `xs | join(separator)`), or a filter that can
    multiply its input's size applied to another's result (`x | replace('a', 'aa') |
    replace('a', 'aa')`). A substitution with linear filters (`{{ subject | title }}, {{ tags |
    join(', ') }}`) does not; it runs inline while its inputs are small enough for the number
    of names it reads and of such filters."""
    try:
        parsed = sandbox().parse(source)
    except jinja2.TemplateSyntaxError:
        return True, 0, 0, 0  # `compile_template` says what is wrong
    found = list(parsed.find_all(nodes.Node))
    computes = any(_computes(node) for node in found)
    references = sum(1 for node in found if isinstance(node, nodes.Name))
    growing = sum(
        1 for node in found if isinstance(node, nodes.Filter) and node.name in GROWING_FILTERS
    )
    applied = sum(1 for node in found if isinstance(node, nodes.Filter | nodes.Test))
    return computes, references, growing, applied


def _computes(node: nodes.Node) -> bool:
    if not isinstance(node, _INLINE_NODES):
        return True
    if isinstance(node, nodes.Filter | nodes.Test):
        allowed = LINEAR_FILTERS if isinstance(node, nodes.Filter) else _CHEAP_TESTS
        if node.name not in allowed or node.dyn_args is not None or node.dyn_kwargs is not None:
            return True
        growing = isinstance(node, nodes.Filter) and node.name in GROWING_FILTERS
        characters = _GROWING_ARGUMENT if growing else _ARGUMENT_CHARACTERS
        arguments = [*node.args, *(keyword.value for keyword in node.kwargs)]
        if not all(_small_literal(argument, characters) for argument in arguments):
            return True
        if node.name in _ATTRIBUTE_FILTERS and any(
            isinstance(a.value, str) and not _SIMPLE_ATTRIBUTE.fullmatch(a.value)
            for a in arguments
            if isinstance(a, nodes.Const)
        ):
            return True  # `attribute='0.0.0...'` or `'a,b,c...'`: a lookup per part, per item
        if growing and node.node is not None:  # what it reads holds no growing filter
            below = [node.node, *node.node.find_all(nodes.Filter)]
            return any(isinstance(n, nodes.Filter) and n.name in GROWING_FILTERS for n in below)
    return False


def _small_literal(node: nodes.Node, characters: int) -> bool:
    if not isinstance(node, nodes.Const):
        return False
    value = node.value
    if isinstance(value, str):
        return len(value) <= characters
    if isinstance(value, int | float) and not isinstance(value, bool):
        return abs(value) <= _ARGUMENT_NUMBER
    return value is None or isinstance(value, bool)
