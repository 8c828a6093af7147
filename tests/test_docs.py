"""The README and docs/ stay true: links and files they name exist, the flows they run are what
they say, and a `flowgraph validate` they show prints what they show."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from test_cli import flowgraph

from engine import Engine
from engine.errors import ValidationError

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# a path as a command names it, from the repository root (link targets are checked as links)
FLOW_PATH = re.compile(r"(?<![\w/.(-])((?:docs/)?examples/[\w./-]+\.json)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_named_files_exist(page: Path) -> None:
    text = page.read_text()
    assert "SPEC" not in text  # the pages stand on their own
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        assert (page.parent / target).exists(), f"{page.name}: broken link {target}"
    for named in FLOW_PATH.findall(text):
        assert (ROOT / named).exists(), f"{page.name}: names {named}, which does not exist"


@pytest.mark.parametrize(
    "flow",
    sorted((ROOT / "docs" / "examples").rglob("*.json")),
    ids=lambda p: str(p.relative_to(ROOT / "docs" / "examples")),
)
def test_the_example_flows_are_what_the_pages_say(flow: Path) -> None:
    if flow.name.endswith(".decisions.json"):
        return
    if flow.name == "invalid.json":  # shown for its errors
        with pytest.raises(ValidationError):
            Engine().compile(flow)
    else:
        Engine().compile(flow)


def shown_validations() -> list[tuple[str, str, list[str]]]:
    """Every `$ flowgraph validate ...` in a console block, with the lines shown after it."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```console\n(.*?)```", page.read_text(), flags=re.S):
            lines = block.splitlines()
            for index, line in enumerate(lines):
                if not line.startswith("$ flowgraph validate "):
                    continue
                shown = []
                for after in lines[index + 1 :]:
                    if after.startswith("$ "):
                        break
                    shown.append(after)
                found.append((page.name, line[2:].split("#")[0].strip(), shown))
    return found


@pytest.mark.parametrize(("page", "command", "shown"), shown_validations())
def test_validate_prints_what_the_pages_show(page: str, command: str, shown: list[str]) -> None:
    result = flowgraph(*shlex.split(command)[1:])
    printed = (result.stdout + result.stderr).splitlines()
    for line in shown:
        assert line in printed, f"{page}: `{command}` no longer prints {line!r}"


def test_some_validations_are_checked() -> None:
    assert len(shown_validations()) >= 3


def test_the_readme_shows_the_coverage_the_examples_have() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("$ flowgraph test examples") :]
    shown = block[block.index("workflow ") : block.index("TOTAL")].splitlines()
    result = flowgraph("test", "examples")
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    start = lines.index(shown[0])
    assert lines[start : start + len(shown)] == shown
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert total in block
    collected = result.stdout.splitlines()[0]
    assert collected in block
