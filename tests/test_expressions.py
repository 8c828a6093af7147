"""CEL with Scenario's trim/slice, jinja2 templates in a sandbox, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.compile.expressions import compile_expression
from engine.errors import ExpressionEvaluationError, ExpressionSyntaxError


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("trim(s)", {"s": "  padded  "}, "padded"),
        ("slice(l, 1, 3)", {"l": [1, 2, 3, 4]}, [2, 3]),
        ("slice(s, 0, 2)", {"s": "abc"}, "ab"),
        ("size(l) > 2 && l.all(x, x > 0)", {"l": [1, 2, 3]}, True),
        ("l.map(x, x * 2)", {"l": [1, 2]}, [2, 4]),
        ("l.filter(x, x % 2 == 0)", {"l": [1, 2, 3, 4]}, [2, 4]),
        ("l.exists(x, x == 3)", {"l": [1, 2, 3]}, True),
        ("s.startsWith('ab') && s.endsWith('yz') && s.contains('m')", {"s": "abmyz"}, True),
        ("s.matches('^[a-z]+$')", {"s": "abc"}, True),
        ("s.split(',')", {"s": "a,b"}, ["a", "b"]),
        ("s.replace('a', 'o')", {"s": "banana"}, "bonono"),
        ("s.lowerAscii() + s.upperAscii()", {"s": "Ab"}, "abAB"),
        # the library's extensions, namespaced or not, each registered only where it is called
        ("math.greatest(a, b) + math.least([a, b])", {"a": 3, "b": 7}, 10),
        ("strings.quote(s) + s.charAt(1)", {"s": 'a"b'}, '"a\\"b""'),
        ("base64.encode(b'hi')", {}, "aGk="),
        ("sets.contains(l, [1]) && lists.range(3) == [0, 1, 2]", {"l": [1, 2]}, True),
        ("l.distinct().reverse()", {"l": [1, 1, 2]}, [2, 1]),
        ("has(m.k)", {"m": {"k": 1}}, True),
        ("n * 2", {"n": 4}, 8),
        ("'a' + \"b\"", {}, "ab"),
        ("{{ name | upper }}-{{ n + 1 }}", {"name": "x", "n": 1}, "X-2"),
        ("{% for t in tags %}{{ t }};{% endfor %}", {"tags": ["a", "b"]}, "a;b;"),
        # the sandbox's globals, beside the inputs (rendered without jinja2's merge per call)
        ("{% for i in range(n) %}{{ i }}{% endfor %}", {"n": 3}, "012"),
        (
            "{% set ns = namespace(c=0) %}{% for t in l %}{% set ns.c = ns.c + t %}{% endfor %}{{ ns.c }}",
            {"l": [1, 2]},
            "3",
        ),
        ("{{ range }}", {"range": "an input named as a global"}, "an input named as a global"),
    ],
)
def test_evaluates(source: str, variables: dict[str, object], expected: object) -> None:
    value = compile_expression(source).evaluate(variables)
    assert value == expected
    assert type(value) is type(expected)


def test_a_template_refuses_an_input_named_self() -> None:
    """jinja2 gives the name to the template itself: the input would not be read."""
    with pytest.raises(ExpressionEvaluationError, match="an input named `self`"):
        compile_expression("{{ self }}!").evaluate({"self": 1})


def test_integers_stay_integers() -> None:
    assert isinstance(compile_expression("n + 1").evaluate({"n": 1}), int)


def test_syntax_errors_carry_the_position() -> None:
    with pytest.raises(
        ExpressionSyntaxError, match=r"expression `a \+\+ ` does not parse at line 1, column 4"
    ):
        compile_expression("a ++ ")
    with pytest.raises(ExpressionSyntaxError, match=r"template `\{\{ a ` does not parse at line 1"):
        compile_expression("{{ a ")


def test_runtime_errors_name_the_expression() -> None:
    with pytest.raises(
        ExpressionEvaluationError,
        match=r"expression `missing \+ 1` failed: unknown variable or function `missing`",
    ):
        compile_expression("missing + 1").evaluate({})
    with pytest.raises(ExpressionEvaluationError, match="division by zero"):
        compile_expression("1 / n").evaluate({"n": 0})


def test_jinja_is_sandboxed() -> None:
    template = compile_expression("{{ s.__class__.__mro__ }}")
    with pytest.raises(ExpressionEvaluationError, match="unsafe|access"):
        template.evaluate({"s": "x"})
    with pytest.raises(ExpressionEvaluationError):
        compile_expression("{% for i in range(10**9) %}{% endfor %}").evaluate({})


def test_one_compiled_expression_serves_many_evaluations() -> None:
    expression = compile_expression("a + b")
    assert [expression.evaluate({"a": i, "b": 1}) for i in range(3)] == [1, 2, 3]
    assert expression.evaluate({"a": "x", "b": "y"}) == "xy"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("duration('1.5s')", "1.5s"),
        ("duration('90s')", "90s"),
        ("timestamp('2023-01-01T00:00:00Z')", "2023-01-01T00:00:00Z"),
        ("b'abc'", "YWJj"),
        ("{1: 'a', 'k': [b'x']}", {"1": "a", "k": ["eA=="]}),
        ("optional.of(1)", 1),
        ("optional.none()", None),
    ],
)
def test_cel_values_map_to_json_as_cel_does(source: str, expected: object) -> None:
    assert compile_expression(source).evaluate({}) == expected


@pytest.mark.parametrize(
    ("source", "keys"),
    [("{1: 'a', '1': 'b'}", {"1", '"1"'}), ("{'true': 1, true: 2}", {"true", '"true"'})],
)
def test_a_cel_map_whose_keys_are_one_json_key_fails_rather_than_losing_a_value(
    source: str, keys: set[str]
) -> None:
    with pytest.raises(ExpressionEvaluationError, match="are the same key in JSON") as raised:
        compile_expression(source).evaluate({})
    named = str(raised.value).split("map keys ")[1].split(" are ")[0]
    assert set(named.split(" and ")) == keys


def test_cel_function_namespaces_are_not_variables() -> None:
    assert compile_expression("optional.of(x).orValue(1)").variables() == {"x"}
    assert compile_expression("math.greatest(a, b)").variables() == {"a", "b"}
    assert compile_expression("optional + 1").variables() == {"optional"}  # a variable here


@pytest.mark.parametrize(
    ("source", "variables", "apart"),
    [
        ("'item ' + string(i)", {"i": 3}, False),
        ("{{ name }}, in {{ style }}", {"name": "a fox", "style": "ink"}, False),
        ("xs.map(x, x * 2)", {"xs": list(range(10))}, False),  # a comprehension over few items
        ("xs.map(x, x * 2)", {"xs": list(range(1000))}, True),
        ("xs.map(x, x * 2)", {"xs": [list(range(200)), list(range(200))]}, True),  # nested count
        ("size(s)", {"s": "x" * 70_000}, True),  # any expression over a large input
        ("size(xs)", {"xs": list(range(1000))}, False),
        # a substitution with linear filters and small literal arguments: inline
        ("{{ name | upper }}", {"name": "a"}, False),
        ("{{ subject | title }}, {{ tags | join(', ') }}", {"subject": "a", "tags": ["b"]}, False),
        ("{{ a ~ b if c is defined else d | default('z') }}", {"a": 1, "b": 2, "c": 3}, False),
        ("{{ name | upper }}", {"name": "x" * 70_000}, True),  # but not over a large input
        # a template that computes: a statement, a call, `*`, another filter, a long literal
        ("{% for t in tags %}{{ t }}{% endfor %}", {"tags": []}, True),
        ("{% if x %}a{% endif %}", {"x": 1}, True),
        ("{{ range(10) | join }}", {}, True),
        ("{{ x.upper() }}", {"x": "a"}, True),
        ("{{ x * 3 }}", {"x": "a"}, True),
        ("{{ x | center(300000000) }}", {"x": "a"}, True),
        ("{{ '%0300000000d' | format(1) }}", {}, True),
        ("{{ xs | map('upper') | join }}", {"xs": []}, True),
        ("{{ xs | join(separator) }}", {"xs": [], "separator": ","}, True),
        ("{{ xs | join('" + "," * 300 + "') }}", {"xs": []}, True),
        ("{{ x | truncate(5000) }}", {"x": "a"}, True),
        # filters that can multiply their input's size: one per chain, a short literal each
        ("{{ x | replace('a', 'aa') }} {{ x | replace('a', 'aa') }}", {"x": "a"}, False),
        ("{{ x | replace('a', 'aa') | replace('a', 'aa') }}", {"x": "a"}, True),
        ("{{ xs | join(',') | list | join(',') }}", {"xs": ["a"]}, True),
        ("{{ x | e | e }}", {"x": "<"}, True),
        ("{{ xs | join('" + "," * 17 + "') }}", {"xs": []}, True),
        # a long template repeats its inputs as often as it likes: apart, as a long CEL one
        ("{{ x }}" * 300, {"x": "a"}, True),
        # nested comprehensions and loops over literals: the cost is not in the inputs' size
        # a nested pair costs the product of its lists: inline only over a few dozen items
        ("xs.map(a, xs.map(b, a + b))", {"xs": [1, 2]}, False),
        ("xs.map(a, xs.map(b, a + b))", {"xs": list(range(100))}, True),
        ("xs.filter(a, ys.exists(b, a == b))", {"xs": list(range(50)), "ys": [1] * 50}, True),
        # chained comprehensions cost the sum of their lists, not the product: inline when small
        ("text.split('\\n').map(s, trim(s)).filter(s, s != '')", {"text": "a\nb"}, False),
        ("xs.map(a, ')').filter(b, b != '(')", {"xs": [1]}, False),
        ("xs.map(a, a + 1).filter(b, b > 2)", {"xs": list(range(1000))}, True),
        # each map can multiply what the next one reads: three chained, over a few characters
        ("xs.map(a, a + a).map(a, a + a).map(a, a + a)", {"xs": ["a"]}, False),
        ("xs.map(a, a + a).map(a, a + a).map(a, a + a)", {"xs": ["a" * 30]}, True),
        # what a hostile flow may try inline: inputs nested under a small list or in a
        # mapping's keys, a name read many times, calls whose cost is not their inputs' size,
        # a raw string that hides a comprehension from a reader of the source
        ("size(x[0])", {"x": ["a" * 70_000]}, True),
        ("size(m)", {"m": {"a" * 70_000: 1}}, True),
        ("size(" + " + ".join(["s"] * 900) + ")", {"s": "a" * 1000}, True),
        ("size([" + ", ".join(["xs"] * 600) + "])", {"xs": list(range(1000))}, True),
        ("size(lists.range(100000000))", {}, True),
        ("size(distinct(xs))", {"xs": [1, 2]}, True),
        ("sets.contains(xs, ys)", {"xs": [1], "ys": [1]}, True),
        ("s.matches('^a')", {"s": "a"}, True),
        ("size(xs.join(s))", {"xs": [""] * 3000, "s": "a" * 3000}, True),
        ("tags.join(', ')", {"tags": ["moody", "cinematic"]}, False),
        ("[r'\\', xs.map(a, xs.map(b, a + b)).size(), ''][1]", {"xs": list(range(100))}, True),
        ("{{ (" + " + ".join(["xs"] * 150) + ") | length }}", {"xs": list(range(1000))}, True),
        # values written in the expression count as inputs
        ("'" + "a" * 640 + "'.replace('a', '" + "a" * 640 + "')", {}, False),  # 0.4 MB
        ("'" + "a" * 640 + "'" + (".replace('a', '" + "a" * 640 + "')") * 2, {}, True),
        # as functions too, and words in a literal are neither names nor calls
        ("replace(s, 'a', s)", {"s": "a" * 2000}, True),
        ("'Do 3 sets. Pick a number in range (1-5): ' + q", {"q": "a" * 1000}, False),
        # calls that double or grow what they are given, nested; chains of calls that each
        # read their whole input
        ("strings.quote(" * 24 + '"\\\\"' + ")" * 24, {}, True),
        ("base64.encode(" * 60 + '"aaaa"' + ")" * 60, {}, True),
        ("xs" + ".sort()" * 10 + ".size()", {"xs": [[]] * 30_000}, True),
        ("{{ xs" + " | sort" * 90 + " | length }}", {"xs": list(range(5000))}, True),
        ("([" + ",".join(["0"] * 300) + "]).map(a, a)", {}, True),
        # `.xs` is a name to CEL; `lastIndexOf` is quadratic; reading an input 15 times
        ("[" + ", ".join([".xs"] * 50) + "]", {".xs": [""] * 20_000}, True),
        ("s.lastIndexOf(t)", {"s": "a", "t": "a"}, True),
        (" + ".join(["xs.reverse().size()"] * 15), {"xs": [{}] * 20_000}, True),
        # an attribute path is a lookup per part, per item
        ("{{ xs | sort(attribute='0,0,0') | length }}", {"xs": ["a"]}, True),
        ("{{ xs | sort(attribute='name') | join(', ') }}", {"xs": []}, False),
        ("[0, 1, 2].map(a, a * 2)", {}, True),
        ("xs.//a comment\nmap(a, a)", {"xs": list(range(1000))}, True),
    ],
)
def test_what_runs_under_the_time_budget(source: str, variables: dict, apart: bool) -> None:
    assert compile_expression(source).runs_apart(variables) is apart


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'a' * 400000000 }}", "`*` would make a value of 400,000,000 characters or items"),
        ("{{ [1] * 20000000 }}", "`*` would make a value of 20,000,000"),
        ("{{ 2 ** 100000000 }}", "`**` would make a number of about 100,000,000 bits"),
        ("{{ '%0300000000d' % 1 }}", "`%` would pad a value to 300,000,000 characters"),
        ("{{ '%*d' % (300000000, 1) }}", "`%` would pad a value to 300,000,000 characters"),
        ("s + s", "its value has 12,000,000 characters or items; the limit is 10,000,000"),
    ],
)
def test_values_past_max_value_are_refused(source: str, message: str) -> None:
    with pytest.raises(ExpressionEvaluationError, match=message.replace("*", r"\*")):
        compile_expression(source).evaluate({"s": "x" * 6_000_000})


def test_jinja_filters_are_not_run_when_a_template_compiles() -> None:
    """jinja2 folds constant filter calls at compile time; ours take the context, so
    `'a' | center(300000000)` is made (and refused) only when it runs, in its budget."""
    expression = compile_expression("{{ 'a' | center(300000000) }}")
    assert expression.runs_apart({})
    assert compile_expression("{{ x | wordwrap(5) }}").evaluate({"x": "hello world"}) == (
        "hello\nworld"
    )


def test_the_linear_filters_are_the_ones_the_docs_name() -> None:
    from engine.compile.templates import LINEAR_FILTERS

    text = (Path(__file__).parent.parent / "docs" / "semantics.md").read_text()
    listed = text.split("The linear\n  filters:")[1].split("(and the tests")[0]
    named = set(re.findall(r"`(\w+)`", listed))
    assert named == LINEAR_FILTERS


def test_a_value_over_the_limit_nested_in_a_small_one_fails_its_node() -> None:
    expression = compile_expression("[s + s]")
    expression.max_value = 1000
    with pytest.raises(ExpressionEvaluationError, match="holds more than 1,000 characters"):
        expression.evaluate({"s": "a" * 600})
    assert expression.evaluate({"s": "a" * 400}) == ["a" * 800]


def test_the_inline_sizes_the_docs_give() -> None:
    """docs/semantics.md gives these as examples of the rule."""
    sizes = {
        "tags.join(', ')": 2044,
        "text.split('\\n').map(s, trim(s)).filter(s, s != '')": 69,
        "xs.map(a, xs.map(b, a + b))": 67,
        "size(" + " + ".join(["s"] * 900) + ")": 20,
    }
    for source, size in sizes.items():
        assert compile_expression(source).inline_size == size, source
    text = (Path(__file__).parent.parent / "docs" / "semantics.md").read_text()
    assert "up to 2,044 characters" in text and "900 copies up to 20" in text
    assert "`xs.map(a, xs.map(b, a + b))` up to\n    67" in text


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + " + ".join(["x"] * 250) + " }}",
        "{{ " + " + ".join(["x"] * 1000) + " }}",
        "{{ " + "(" * 300 + "x" + ")" * 300 + " }}",
    ],
)
def test_a_template_nested_too_deeply_is_refused_with_a_reason(source: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match="is nested too deeply to compile"):
        compile_expression(source)


def test_the_cases_of_one_node_share_what_runs_inline() -> None:
    from engine.compile.expressions import inline_share, inputs_exceed

    cases = [compile_expression(f"size(xs) == {n}") for n in range(100)]
    small, large = {"xs": [""] * 10}, {"xs": [""] * 5000}
    assert not inputs_exceed(inline_share(cases[:3]), small)
    assert not cases[0].runs_apart(large)  # one case over these inputs: inline
    assert inputs_exceed(inline_share(cases), large)  # a hundred: apart
