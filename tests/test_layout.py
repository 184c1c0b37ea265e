"""The package's layers, read from the imports of every module (docs/library.md has the map).

common (the user-error type, reading user files) < core (modeling, tokenization, optimization) < runtime (running a
task) < tasks (classifier, squad, pretraining, ner, features, interop) < serving (models kept loaded, using several
tasks) < programs (the top-level modules that `python -m bert.<program>` runs, and bert.commands). A module imports only from its own layer's package or lower
ones; the core only the error type and file reader; a task no other task; a program no other program; no cycles.
"""

import ast
import os

from helpers import REPO_ROOT

PACKAGE_DIR = os.path.join(REPO_ROOT, "bert")
CORE = {"bert.modeling", "bert.tokenization", "bert.optimization"}
TASKS = ("classifier", "squad", "pretraining", "ner", "features", "interop")
CORE_MAY_IMPORT = {"bert.common.errors", "bert.common.file_io"}
PROGRAM_RANK = 5


def module_names():
    """{dotted module name: file path} of every module in bert/."""
    names = {}
    for folder, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, REPO_ROOT)[:-3].split(os.sep)
                names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def bert_imports(path, known):
    """The bert modules a file imports (anywhere in it), resolved to module names in `known`."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names if alias.name.startswith("bert"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bert"):
            for alias in node.names:  # `from bert.x import y`: y is a module or a name in module bert.x
                full = f"{node.module}.{alias.name}"
                imported.add(full if full in known else node.module)
    return {name for name in imported if name != "bert"}


def layer(module):
    """(rank, package) of a module: its layer and the package it belongs to."""
    parts = module.split(".")
    if module == "bert":
        return PROGRAM_RANK, "bert"
    if parts[1] == "common":
        return 0, "bert.common"
    if module in CORE:
        return 1, module
    if parts[1] == "runtime":
        return 2, "bert.runtime"
    if parts[1] in TASKS:
        return 3, "bert." + parts[1]
    if parts[1] == "serving":
        return 4, "bert.serving"
    return PROGRAM_RANK, module  # a program


def import_graph():
    known = module_names()
    return {module: bert_imports(path, known) for module, path in known.items()}


def test_every_module_has_a_layer_and_programs_are_top_level():
    for module in import_graph():
        rank, _ = layer(module)
        if rank == PROGRAM_RANK:
            assert module.count(".") <= 1, f"{module} is in no known subpackage"


def layering_violations(graph):
    """"A imports B" for every import of `graph` ({module: imported modules}) that breaks the layering."""
    violations = []
    for module, imports in sorted(graph.items()):
        rank, package = layer(module)
        for imported in sorted(imports):
            imported_rank, imported_package = layer(imported)
            if rank == 1:
                allowed = imported in CORE_MAY_IMPORT
            elif rank == PROGRAM_RANK:
                allowed = imported_rank < PROGRAM_RANK or module == "bert"
            else:
                allowed = imported_rank < rank or imported_package == package
            if not allowed:
                violations.append(f"{module} imports {imported}")
    return violations


def find_cycle(graph):
    """One import cycle of `graph` as a list of modules, or None."""
    state = {}

    def visit(module, path):
        state[module] = "visiting"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "visiting":
                return path + [module, imported]
            if imported not in state:
                cycle = visit(imported, path + [module])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            if cycle:
                return cycle
    return None


def test_modules_import_only_lower_layers_or_their_own_package():
    assert layering_violations(import_graph()) == []


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_the_checks_catch_what_they_forbid():
    assert layering_violations({"bert.modeling": {"bert.runtime.performance"},  # core on runtime
                                "bert.tokenization": {"bert.common.file_io"},  # allowed
                                "bert.runtime.export": {"bert.classifier.data"},  # runtime on a task
                                "bert.ner.data": {"bert.squad.data"},  # task on another task
                                "bert.squad.job": {"bert.serving.predictor"},  # task on serving
                                "bert.run_ner": {"bert.run_squad"}}) == [  # program on another program
        "bert.modeling imports bert.runtime.performance", "bert.ner.data imports bert.squad.data",
        "bert.run_ner imports bert.run_squad", "bert.runtime.export imports bert.classifier.data",
        "bert.squad.job imports bert.serving.predictor"]
    assert find_cycle({"bert.squad.data": {"bert.squad.job"}, "bert.squad.job": {"bert.squad.data"}}) == [
        "bert.squad.data", "bert.squad.job", "bert.squad.data"]
