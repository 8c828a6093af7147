"""Reading a workflow document: a bare Workflow, `{"workflow": ...}` or a job envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic

from engine.compile.editor_graph import has_editor_graph, needs_publish
from engine.compile.models import Workflow, input_type_of
from engine.errors import DocumentError, Problem, ValidationError
from engine.gc_tuning import quiet_gc

# Fields a job writes into its flow nodes; a replayed job starts from the flow without them.
RUNTIME_NODE_FIELDS = ("status", "output", "assets", "jobId", "statusReason", "waitingGates")


MAX_DEPTH = 64  # levels of nested arrays and objects; a Scenario workflow uses about 8


HUGE_NUMBER = "a number of more than 4,300 digits does not fit in 64 bits"
INT_RANGE = (-(2**63), 2**64 - 1)  # what JSON encoders (and Scenario's API) carry exactly


def value_problem(value: Any, where: str = "") -> Problem | None:
    """A problem for the first array or object nested more than MAX_DEPTH levels deep, or the
    first integer outside 64 bits, in `value`, naming where. Iterative walks (a hostile
    document must not exhaust the stack, nor take quadratic time): a first one that keeps no
    path, then, only when it finds something, one that spells out where."""
    if _within_limits(value):
        return None
    return _first_problem(value, where)


def _within_limits(value: Any) -> bool:
    """Whether nothing in `value` is nested too deep or is an integer past 64 bits: one walk
    over the containers, each child's type looked at once, no path kept."""
    low, high = INT_RANGE
    containers = (dict, list)
    if type(value) is int:
        return low <= value <= high
    if not isinstance(value, containers):
        return True
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        for child in item.values() if isinstance(item, dict) else item:
            kind = type(child)
            if kind is str:
                continue
            if kind is int:
                if not low <= child <= high:
                    return False
            elif kind is dict or kind is list or isinstance(child, containers):
                stack.append((child, depth + 1))
    return True


def _first_problem(value: Any, where: str) -> Problem | None:
    """The problem `_within_limits` found, with its path: each entry keeps its parent's, so
    only the path of what is found is ever spelled out."""
    low, high = INT_RANGE
    stack: list[tuple[Any, int, tuple[Any, Any] | None]] = [(value, 0, None)]
    while stack:
        item, depth, trail = stack.pop()
        if type(item) is int:
            if not low <= item <= high:
                text = str(item) if len(str(item)) <= 30 else str(item)[:29] + "…"
                return Problem(
                    f"the number {text} does not fit in 64 bits", path=_spelled(trail, where)
                )
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_DEPTH:
            return Problem(f"nested more than {MAX_DEPTH} levels deep", path=_spelled(trail, where))
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        stack.extend((child, depth + 1, (key, trail)) for key, child in pairs)
    return None


def _spelled(trail: tuple[Any, Any] | None, where: str) -> str:
    keys = []
    while trail is not None:
        key, trail = trail
        keys.append(key)
    path = where
    for key in reversed(keys):
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else str(key))
    return path or "<document>"


def parse_json(text: str, *, source: str = "<document>") -> Any:
    """Parse JSON text, turning a syntax error into a `DocumentError` with line and column."""
    try:
        with quiet_gc():
            return json.loads(text)
    except RecursionError:
        raise DocumentError(
            [Problem(f"nested more than {MAX_DEPTH} levels deep", path=source)]
        ) from None
    except json.JSONDecodeError as error:
        raise DocumentError(
            [
                Problem(
                    f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}",
                    path=source,
                )
            ]
        ) from None
    except ValueError:  # an integer of more than 4,300 digits
        raise DocumentError([Problem(HUGE_NUMBER, path=source)]) from None


def read_text_file(path: str | Path, *, what: str = "document") -> str:
    """The text of a file a user named; when it cannot be read, a DocumentError (`what` is
    invalid) that says why."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError([Problem(f"no such file `{file}`")], what=what) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = (error.strerror if isinstance(error, OSError) else None) or error
        raise DocumentError([Problem(f"cannot read `{file}`: {reason}")], what=what) from None


def read_json_file(path: str | Path, *, what: str = "document") -> Any:
    """The parsed JSON of a file, with a clear problem when it cannot be read or parsed."""
    text = read_text_file(path, what=what)
    try:
        return parse_json(text, source=str(path))
    except DocumentError as error:
        raise DocumentError(error.problems, what=what) from None


def read_document(path: str | Path) -> Workflow:
    """Read and validate a workflow document from a file; its problems name the file."""
    try:
        return load_workflow(read_json_file(path))
    except DocumentError as error:
        raise DocumentError(error.problems, what=f"document {path}") from None


def publish_document(document: Any) -> dict[str, Any]:
    """Publish a document (a webapp export, a workflow, or `{"workflow": ...}`, answered in the
    same form): its editor graph compiled into its `flow` and `inputs`, `status: "ready"`. The
    rest is kept as it is."""
    workflow, prefix = _unwrapped(document)
    if not isinstance(workflow, dict):
        raise DocumentError([Problem("expected a JSON object: a webapp export or a workflow")])
    if not has_editor_graph(workflow):
        problem = Problem(
            "nothing to publish: no `editorInfo` graph with nodes", path=f"{prefix}editorInfo"
        )
        raise DocumentError([problem])
    found = value_problem(workflow)
    if found is not None:
        raise DocumentError([found])
    from engine.compile.publish import publish  # only for editor graphs

    published = {**publish(workflow, prefix=prefix), "status": "ready"}
    return {"workflow": published} if prefix else published


def _unwrapped(document: Any) -> tuple[Any, str]:
    """The workflow of a `{"workflow": ...}` envelope, and the path prefix it sits at."""
    if isinstance(document, dict) and isinstance(document.get("workflow"), dict):
        return document["workflow"], "workflow."
    return document, ""


def load_workflow(document: Any, *, publish_editor: bool = True) -> Workflow:
    """Validate any accepted document form and return its Workflow.

    A job envelope is replayed from its `metadata.flow`: clones are dropped and the fields the
    run wrote (`status`, `output`, `assets`, ...) are removed. A document with no flow but an
    editor graph (a webapp export) is published first, unless `publish_editor` is false (a
    draft is stored as the editor saved it); `published_from_editor` then says so.
    """
    if isinstance(document, dict | list):
        found = value_problem(document)
        if found is not None:
            raise DocumentError([found])
    document, prefix = _unwrapped(document)
    if not prefix and isinstance(document, dict) and isinstance(document.get("job"), dict):
        document, prefix = _workflow_from_job(document["job"]), "job.metadata."
    if not isinstance(document, dict):
        raise DocumentError(
            [
                Problem(
                    'expected a JSON object: a Workflow, `{"workflow": ...}` or '
                    f'`{{"job": ...}}`, got {type(document).__name__}'
                )
            ]
        )
    published = publish_editor and needs_publish(document)
    if published:
        from engine.compile.publish import publish

        document = publish(document, prefix=prefix)
    if "flow" not in document:
        editor = " (or an `editorInfo` graph with nodes, as a webapp export has)"
        raise DocumentError(
            [Problem(f"a workflow needs a `flow` array of nodes{editor}", path=f"{prefix}flow")]
        )
    try:
        with quiet_gc():
            workflow = Workflow.model_validate(document)
    except pydantic.ValidationError as error:
        raise DocumentError(schema_problems(error, document, prefix=prefix)) from None
    workflow.__dict__["_read_from"] = document  # read by Workflow.to_wire
    workflow.__dict__["_published"] = published  # read by published_from_editor
    raw_flow = document.get("flow")
    if isinstance(raw_flow, list):
        for node, raw in zip(workflow.flow, raw_flow, strict=False):
            # kept beside the fields: the wire form, read by FlowNode.wire()
            node.__dict__["_read_from"] = raw
    return workflow


def published_from_editor(workflow: Workflow) -> bool:
    """Whether `workflow`'s flow was compiled from its editor graph as it was read."""
    return bool(workflow.__dict__.get("_published"))


def schema_problems(
    error: pydantic.ValidationError, document: Any, *, prefix: str = ""
) -> list[Problem]:
    """Turn pydantic's errors into problems with JSON paths (`flow[3].inputs[1].ref.node`)."""
    problems = []
    for item in error.errors():
        location = item["loc"]
        path = prefix + json_path(location)
        node_id = None
        if len(location) >= 2 and location[0] == "flow" and isinstance(location[1], int):
            try:
                node_id = document["flow"][location[1]].get("id")
            except (KeyError, IndexError, TypeError, AttributeError):
                node_id = None
        message = item["msg"].removeprefix("Value error, ")  # our own validators' words
        if item["type"] == "missing":
            message = f"missing required field `{location[-1]}`"
        elif "input" in item and item["type"] not in ("missing",):
            message = f"{message} (got `{_short(item['input'])}`)"
        problems.append(Problem(message, path=path, node_id=node_id))
    return problems


def json_path(location: tuple[Any, ...] | list[Any]) -> str:
    """`("flow", 3, "inputs", 1, "ref")` → `flow[3].inputs[1].ref`."""
    out = ""
    for part in location:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _workflow_from_job(job: dict[str, Any]) -> dict[str, Any]:
    found = job.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    flow = metadata.get("flow")
    if not isinstance(flow, list):
        raise DocumentError(
            [Problem("a job envelope needs `metadata.flow`", path="job.metadata.flow")]
        )
    nodes = []
    for node in flow:
        if not isinstance(node, dict) or "loopNodeId" in node:
            if isinstance(node, dict):
                continue
            nodes.append(node)
            continue
        clean = {k: v for k, v in node.items() if k not in RUNTIME_NODE_FIELDS}
        if clean.get("type") == "user-selection":
            clean.pop("items", None)
        if isinstance(clean.get("inputs"), list):
            clean["inputs"] = [
                {k: v for k, v in i.items() if not (k == "value" and "ref" in i)}
                if isinstance(i, dict)
                else i
                for i in clean["inputs"]
            ]
        nodes.append(clean)
    workflow: dict[str, Any] = {"flow": nodes}
    recorded = metadata.get("input")
    recorded = recorded if isinstance(recorded, dict) else {}
    declared = [
        {"name": name, "type": input_type_of(value) or "string", "default": value}
        for name, value in recorded.items()
    ]
    # an optional input the run was not given is not recorded, yet the flow reads it
    for name, input_type in _workflow_refs(nodes).items():
        if name not in recorded:
            declared.append({"name": name, "type": input_type})
    if declared:
        workflow["inputs"] = declared
    if metadata.get("workflowId"):
        workflow["id"] = metadata["workflowId"]
    return workflow


def _workflow_refs(nodes: list[Any]) -> dict[str, str]:
    """The run inputs the nodes of a flow read (`ref.node` = `workflow`), with their types."""
    found: dict[str, str] = {}
    for node in nodes:
        for entry in node.get("inputs") or [] if isinstance(node, dict) else []:
            ref = entry.get("ref") if isinstance(entry, dict) else None
            if isinstance(ref, dict) and ref.get("node") == "workflow":
                name, input_type = ref.get("name"), entry.get("type")
                if isinstance(name, str) and isinstance(input_type, str):
                    found.setdefault(name, input_type)
    return found


# files that sit next to workflows and are none: test files and decisions files
NOT_WORKFLOWS = (".flowtest.json", ".decisions.json")


def folder_workflows(folder: Path) -> Iterator[tuple[Path, Workflow | ValidationError]]:
    """Each `*.json` of `folder` (test and decisions files aside), in name order, read as a
    workflow (or why it is none)."""
    if not folder.is_dir():
        raise ValidationError([Problem(f"no such folder `{folder}`")], what="workflows")
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(NOT_WORKFLOWS):
            continue
        try:
            yield path, read_document(path)
        except ValidationError as error:
            yield path, error


def file_workflow_id(path: Path) -> str:
    """The workflow id a file's name gives: `wflow_x.json` and an editor export of it,
    `wflow_x.export.json`, are both `wflow_x`."""
    return path.stem.removesuffix(".export") or path.stem


def load_workflow_folder(folder: Path) -> dict[str, Workflow]:
    """Every workflow of `folder`, by file name (the workflow id); all problems at once."""
    found: dict[str, Workflow] = {}
    files: dict[str, str] = {}
    problems: list[Problem] = []
    for path, workflow in folder_workflows(folder):
        if isinstance(workflow, ValidationError):
            problems += [Problem(f"{path.name}: {p}") for p in workflow.problems]
            continue
        workflow_id = file_workflow_id(path)
        if workflow_id in files:
            other = files[workflow_id]
            problems.append(
                Problem(f"{path.name}: `{other}` gives workflow id `{workflow_id}` too")
            )
        found[workflow_id], files[workflow_id] = workflow, path.name
    if problems:
        raise ValidationError(problems, what="workflows")
    return found
