"""DESIGN.md's "Which room may import which", held by a test.

Every import of grasp_lib inside grasp_lib (at module level and inside functions, relative or absolute)
goes only where the table allows. A room is a top-level module or package of grasp_lib (train.packing is a
room of its own); imports within a room are free. The test also holds that no room branches on a task
family's name or keeps a table keyed by family names (tasks.FAMILIES is the one place a family is defined).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "grasp_lib"

# DESIGN.md's table, plus (marked +) what the design implies but the table leaves out: rooms it does not
# list (paths, examples, sampling_eval) and edges its text names. train.packing is a room of its own.
ALLOWED = {
    "__init__": set(),
    "schema": set(),
    "paths": set(),  # + the repository root and the data root
    "progress": set(),
    "run_files": set(),
    "corpora": {"schema", "paths"},  # + paths: the data root
    "matching": {"schema"},
    "tasks": {"schema", "matching"},  # + matching: a family's parts score by one-to-one matching
    "prompts": {"tasks", "schema", "run_files"},  # + run_files: few-shot rows come from data/sft.jsonl
    "parsing": {"tasks", "schema"},
    "rewards": {"parsing", "matching", "tasks"},
    "metrics": {"parsing", "matching", "tasks", "run_files"},
    "stats": {"metrics", "parsing", "matching", "tasks", "run_files"},  # + metrics: one parsed_row
    "errors": {"parsing", "matching", "tasks", "run_files", "examples"},  # errors -> examples: a stale edge
    "examples": {"corpora", "params", "schema", "tasks", "run_files"},  # + corpora -> rows of each family
    "params": {"paths"},  # a leaf: schema and loading (+ paths: a params file relative to the repository)
    # + paths: the data root; tasks: data.curriculum names a task family
    "preflight": {"params", "rewards", "corpora", "prompts", "models", "paths", "tasks"},
    "models": {"paths"},  # + paths: the model cache
    "constrained": {"tasks", "parsing", "prompts"},  # + prompts: the confidence line
    "infer": {"models", "constrained", "progress"},
    "train.packing": set(),  # torch only (test_packing_imports_torch_only)
    # + stats: the confidence stage's targets; examples: the SFT curriculum; tasks: the gold target;
    # parsing: the confidence line replaced in an answer; paths: the run folder; preflight: the stages build
    # their configs with the trainer_defaults and checks preflight builds them with (preflight may not
    # import train, and one home keeps what passes preflight what trains)
    "train": {"models", "rewards", "prompts", "params", "infer", "train.packing", "run_files", "progress", "stats",
              "examples", "tasks", "paths", "parsing", "preflight"},
    "figures": {"stats", "run_files", "paths"},  # reads runs/ files only (+ stats computes from them)
    "evaluation": {"infer", "models", "metrics", "prompts", "run_files", "params"},  # + params: the settings
    "sampling_eval": {"evaluation", "infer", "models", "params", "prompts", "run_files"},  # + part of evaluation
    # + metrics: the F1 table at the end of a run; evaluation: rescoring; corpora: checksums; progress: the
    # kernels' events; figures: the figures command; models: the run's resolved precision (recorded beside the
    # machine's fp32 and bf16 figures)
    "runner": {"params", "preflight", "paths", "run_files", "metrics", "corpora", "progress", "models"},
    "__main__": {"params", "paths", "run_files", "runner", "evaluation", "metrics", "figures", "corpora"},
}
SUBROOMS = {"train.packing"}  # a module that is a room of its own inside a package


def room_of(module: str) -> str:
    """grasp_lib.rewards.ner -> rewards; grasp_lib.tasks -> tasks; grasp_lib.train.packing -> train.packing;
    grasp_lib -> __init__."""
    parts = module.split(".")
    if ".".join(parts[1:3]) in SUBROOMS:
        return ".".join(parts[1:3])
    return parts[1] if len(parts) > 1 else "__init__"


def grasp_imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str, bool]]:
    """(line, imported room, inside a function) for every import of grasp_lib in `source`, the code of
    `module`; relative imports are resolved against it."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = package[:len(package) - child.level + 1] if child.level else []
                head = ".".join(base + ([child.module] if child.module else []))
                targets = [head] if child.module else [f"{head}.{alias.name}" for alias in child.names]
                if head == "grasp_lib":  # from grasp_lib import tasks
                    targets = [f"grasp_lib.{alias.name}" for alias in child.names]
            found.extend((child.lineno, room_of(t), in_function) for t in targets
                         if t == "grasp_lib" or t.startswith("grasp_lib."))
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    room = room_of(module)
    if room not in ALLOWED:
        return [f"{module}: room {room!r} is not in the import table (add it, with what it may import)"]
    return [f"{module}:{line}: {room} imports {target}{' (inside a function)' if inner else ''}; allowed: "
            f"{sorted(ALLOWED[room]) or 'nothing of grasp_lib'}"
            for line, target, inner in grasp_imports(source, module, is_package)
            if target != room and target not in ALLOWED[room]]


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        is_package = path.name == "__init__.py"
        module = ".".join(rel.parts[:-1] if is_package else rel.parts)
        yield path, module, is_package


def test_every_import_follows_the_room_table():
    problems = [v for path, module, is_package in _modules() for v in violations(path.read_text(), module, is_package)]
    assert not problems, "\n".join(problems)


def test_a_forbidden_import_is_caught_at_module_level_and_inside_a_function():
    """The check itself can fail: rewards may not import train, models or infer, however written."""
    cases = {
        "from ..train import grpo\n": 1,
        "def f():\n    from ..models import load_model\n    return load_model\n": 1,
        "import grasp_lib.infer\n": 1,
        "from grasp_lib import figures, tasks\n": 1,  # tasks is allowed, figures is not
        "from .common import golds\nfrom ..tasks import norm\nfrom .. import parsing\n": 0,
    }
    for source, expected in cases.items():
        found = violations(source, "grasp_lib.rewards.ner")
        assert len(found) == expected, (source, found)
    inner = violations("def f():\n    from .train.common import shots_for\n", "grasp_lib.evaluation")
    assert inner and "inside a function" in inner[0]
    assert violations("import os\n", "grasp_lib.newroom")  # an unknown room must be added to the table
    assert room_of("grasp_lib") == "__init__" and grasp_imports("from . import tasks\n", "grasp_lib", True) == [
        (1, "tasks", False)]


def _family_tables(source: str) -> list[int]:
    """Lines of dict literals keyed by two or more task family names: family knowledge that belongs in
    the family's record (tasks.FAMILIES)."""
    from grasp_lib.tasks import FAMILIES

    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Dict)
            and sum(isinstance(k, ast.Constant) and k.value in FAMILIES for k in node.keys) >= 2]


def test_no_table_keyed_by_family_name_outside_tasks():
    found = [f"{module}:{line}" for path, module, _ in _modules() if room_of(module) != "tasks"
             for line in _family_tables(path.read_text())]
    assert not found, found
    assert _family_tables('COLUMNS = {"ner": 1, "qa": 2}\nOTHER = {"ner": 1, "x": 2}\n') == [1]


def test_packing_imports_torch_only():
    tree = ast.parse((PACKAGE / "train" / "packing.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.level == 0}
    assert imported <= {"__future__", "dataclasses", "typing", "torch"}, imported


def _family_comparisons(source: str) -> list[int]:
    """Lines comparing a task family (a name or attribute `family`) with a string literal or a collection
    of them: the per-family branches that tasks.FAMILIES replaces."""
    def is_family(node) -> bool:
        return (isinstance(node, ast.Name) and node.id == "family") or (
            isinstance(node, ast.Attribute) and node.attr == "family")

    def is_literal(node) -> bool:
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(is_literal(e) for e in node.elts)
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Compare)
            and any(is_family(a) and is_literal(b) or is_literal(a) and is_family(b)
                    for a, b in zip([node.left] + node.comparators, node.comparators))]


def test_no_room_branches_on_a_family_name():
    found = [f"{module}:{line}" for path, module, _ in _modules() for line in _family_comparisons(path.read_text())]
    assert not found, found
    assert _family_comparisons('if spec.family == "re":\n    pass\nif family in ("ner", "joint"):\n    pass\n') == [1, 3]
    assert _family_comparisons('if family.part("entities"):\n    pass\n') == []


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_the_table_names_only_rooms_that_exist(room):
    names = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()
                                                       and (p / "__init__.py").exists()} | {
        name for name in SUBROOMS if (PACKAGE / name.replace(".", "/")).with_suffix(".py").exists()}
    assert room in names and ALLOWED[room] <= names
