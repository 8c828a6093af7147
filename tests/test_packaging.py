"""What a user installs: the wheel's contents and metadata, and the CLI's conventions."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("flowgraph-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_engine_and_nodes_only(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"engine", "nodes"}
    for shipped in ("console.html", "console.js", "console.css", "vendor/elk.bundled.js"):
        assert f"engine/views/console/{shipped}" in names
    assert "engine/views/console/vendor/elkjs-LICENSE.md" in names
    assert "engine/py.typed" in names
    assert not any(name.startswith("benchmarks/") for name in names)


def test_the_wheel_declares_what_it_imports_and_its_license(wheel: zipfile.ZipFile) -> None:
    (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(wheel.read(metadata_name).decode())
    required = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    required_names = {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in required}
    # every third-party package the installed code imports without an extra
    assert {"httpx", "networkx", "pydantic", "anyio", "jinja2", "structlog", "typer", "pyyaml"} <= (
        required_names
    )
    extras = metadata.get_all("Provides-Extra") or []
    assert {"postgres", "distributed"} <= set(extras)
    assert metadata["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())
    assert metadata.get_all("Classifier")


def test_the_wheel_registers_the_pytest_plugin(wheel: zipfile.ZipFile) -> None:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    entry_points = wheel.read(name).decode()
    assert "[pytest11]\nflowgraph = engine.testing.pytest_plugin\n" in entry_points


def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "engine", *args]
    )
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_the_cli_does_not_import_the_benchmarks() -> None:
    result = run(
        code="import sys, engine.cli.app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'benchmarks'))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_public_names_are_imported_on_first_use() -> None:
    """`import engine` (as every command does) and the pytest plugin (which pytest loads in every
    session) load neither networkx nor pydantic; each name of `engine.__all__` is there when
    asked for."""
    result = run(
        code="import sys, engine, engine.testing.pytest_plugin\n"
        "print(sorted(m for m in ('networkx', 'pydantic', 'engine.api') if m in sys.modules))\n"
        "missing = [n for n in engine.__all__ if getattr(engine, n, None) is None]\n"
        "print(missing, engine.Engine.__module__, engine.Workflow.__module__)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "[] engine.api engine.compile.models"]


def test_version_and_short_help() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"flowgraph {version('flowgraph')}"
    for args in (("-h",), ("run", "-h"), ("jobs", "-h")):
        result = run(*args)
        assert result.returncode == 0, result.stderr
        assert "Usage: " in result.stdout
    assert "--show-completion" in run("--help").stdout


BLOCK = (  # the CLI in a Python where the named packages are not installed
    "import sys\n"
    "for name in {blocked!r}:\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['flowgraph', *sys.argv[1:]]\n"
    "from engine.cli.app import main\n"
    "main()\n"
)


def test_a_missing_extra_names_the_extra_to_install(tmp_path: Path) -> None:
    """Without psycopg, a PostgreSQL store says which extra to install: no 'flowgraph bug'."""
    result = run(
        "jobs", "--db", "postgresql://localhost/flowgraph", code=BLOCK.format(blocked={"psycopg"})
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'flowgraph[postgres]'" in result.stderr
    assert "bug" not in result.stderr


def test_a_dask_executor_without_dask_names_the_extra(tmp_path: Path) -> None:
    config = tmp_path / "flowgraph.toml"
    config.write_text('[executors.cluster]\ntype = "dask"\n\n[routing]\ndefault = "cluster"\n')
    flow = ROOT / "examples" / "fan-out.json"
    result = run(
        "run",
        str(flow),
        "--config",
        str(config),
        "--db",
        ":memory:",
        code=BLOCK.format(blocked={"distributed", "dask"}),
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'flowgraph[distributed]'" in result.stderr
    assert "bug" not in result.stderr
