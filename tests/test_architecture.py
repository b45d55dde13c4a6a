"""DESIGN.md's dependency rules, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("lucy", "app", "capabilities")
COMPOSITION_ROOT = "app"  # the worker, the CLI, `lucy dev`, the ingress app: they wire everything
STDLIB_PURE = {
    "__future__",
    "dataclasses",
    "datetime",
    "typing",
    "enum",
    "collections",
    "json",  # pure parsing of the model's answers
    "asyncio",  # tasks and waits on Temporal's deterministic event loop
    "re",  # pure text matching (the policy's host names)
    "urllib.parse",  # pure URL parsing (the policy's host names); not urllib.request
    "temporalio",
}
# Pure modules outside the workflow role that workflow code may import: the shared contracts, the
# text rules for what Lucy posts, the monitors' conditions and the tool catalog (no I/O, no env).
# A capability's own contracts (``capabilities/<name>/contracts``) are pure too: see CONTRACTS_OF.
PURE_MODULES = {
    "lucy.contracts",
    "lucy.redact",
    "lucy.slack.text",
    "capabilities.proactive.conditions",
    "capabilities.tools.spec",
}


# Whose contracts a capability's workflow code may import besides its own and lucy.contracts:
# the task's state names approvals' and email's, and the sandbox must see every contracts module
# a payload's type hints name (see capabilities.task.workflow.workflow). No other pair.
CONTRACTS_OF = {
    "task": {"approvals", "delegate", "email", "memory", "proactive", "skills", "tools"},
    "approvals": {"task"},
    "email": {"approvals", "task"},
    "proactive": {"approvals", "mcp", "task", "tools"},  # mcp: the maintenance step's refresh
    "delegate": {"approvals", "task", "tools"},  # a sub-task is a task: its input, state and tool calls
    "skills": {"task"},  # loading a skill narrows the task's state
}


def role(module_or_path: str) -> str:
    """A module's role from where it lives: ``kernel`` (lucy/), ``app`` (the composition roots),
    and inside ``capabilities/<name>/`` by file name: ``workflow``, ``activities``,
    ``listeners`` (a module of that name or any module in a folder of that name),
    ``contracts`` (``contracts.py`` or ``contracts/``), else ``shared`` (views, repository, the
    capability's own rules)."""
    parts = module_or_path.removesuffix(".py").replace("/", ".").split(".")
    if parts[0] == "lucy":
        return "kernel"
    if parts[0] == COMPOSITION_ROOT:
        return "app"
    if parts[0] != "capabilities":
        return "outside"
    for kind in ("workflow", "activities", "listeners", "contracts"):
        if kind in parts[2:]:
            return kind
    return "shared"


def capability(module_or_path: str) -> str:
    """``task`` for anything under ``capabilities/task/``; "" outside the capabilities."""
    parts = module_or_path.removesuffix(".py").replace("/", ".").split(".")
    return parts[1] if parts[0] == "capabilities" and len(parts) > 2 else ""


def _pure(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PURE_MODULES)


def _resolve(module: str, name: str) -> str:
    """``from module import name``: the module ``name`` is when it is one, else ``module``."""
    base = ROOT / module.replace(".", "/") / name
    return f"{module}.{name}" if base.with_suffix(".py").exists() or base.is_dir() else module


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, inside `imports_passed_through`) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, passed_through: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = passed_through
            if isinstance(child, ast.With) and "imports_passed_through" in ast.unparse(
                child.items[0].context_expr
            ):
                inside = True
            if isinstance(child, ast.Import):
                out.extend((alias.name, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                out.extend((_resolve(child.module, a.name), inside) for a in child.names)
            visit(child, inside)

    visit(tree, False)
    return out


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _all_modules() -> list[Path]:
    return [p for package in PACKAGES for p in _modules(package)]


def _of_role(kind: str) -> list[Path]:
    return [p for p in _all_modules() if role(str(p.relative_to(ROOT))) == kind]


def _contracts_ok(importer: str, module: str) -> bool:
    """``module`` is the importer's own capability's contracts, or one CONTRACTS_OF allows."""
    mine, theirs = capability(importer), capability(module)
    return role(module) == "contracts" and (theirs == mine or theirs in CONTRACTS_OF.get(mine, ()))


def _workflow_import_ok(importer: str, module: str, passed_through: bool) -> bool:
    if module in STDLIB_PURE or module.split(".")[0] in STDLIB_PURE:
        return True
    if _pure(module) or role(module) == "workflow" or _contracts_ok(importer, module):
        return True
    # activities are only referenced (by method, for their names and types), never run
    return passed_through and role(module) == "activities"


def test_workflow_role_imports_only_deterministic_code():
    problems = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in _of_role("workflow")
        for m, passed in _imports(p)
        if not _workflow_import_ok(str(p.relative_to(ROOT)), m, passed)
    ]
    assert _of_role("workflow"), "no workflow-role module found: the role rule reads nothing"
    assert not problems, problems


def _contracts_import_ok(module: str) -> bool:
    pure = module in STDLIB_PURE or module.split(".")[0] in STDLIB_PURE
    return pure or module.startswith("lucy.contracts") or role(module) == "contracts"


def test_contracts_are_pure_data():
    """A capability's contracts import only the pure standard library, temporalio, the shared
    contracts and other contracts: workflows import them, so they must be as pure as workflows."""
    problems = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in _of_role("contracts")
        for m, _ in _imports(p)
        if not _contracts_import_ok(m)
    ]
    assert _of_role("contracts"), "no contracts module found: the rule reads nothing"
    assert not problems, problems


def test_the_contracts_rule_sees_a_violation():
    assert _contracts_ok("capabilities/task/workflow/models.py", "capabilities.task.contracts.task")
    assert not _contracts_ok("capabilities/budgets/workflow.py", "capabilities.task.contracts.task")
    assert not _contracts_ok("capabilities/task/workflow/models.py", "capabilities.task.repository")
    assert not _contracts_import_ok("lucy.db.session") and not _contracts_import_ok("httpx")


def test_the_kernel_keeps_no_capability_contracts():
    """lucy.contracts holds what several capabilities share and re-exports nothing."""
    init = ROOT / "lucy" / "contracts" / "__init__.py"
    assert not [n for n in ast.parse(init.read_text()).body if isinstance(n, ast.Import | ast.ImportFrom)]


def test_roles_are_read_from_file_names():
    assert role("capabilities/task/workflow/models.py") == "workflow"
    assert role("capabilities.approvals.workflow") == "workflow"
    assert role("capabilities/budgets/activities.py") == "activities"
    assert role("capabilities.email.listeners.inbound") == "listeners"
    assert role("capabilities/feedback/views.py") == "shared"
    assert role("capabilities/task/contracts/task.py") == "contracts"
    assert role("capabilities.approvals.contracts") == "contracts"
    assert role("lucy.settings") == "kernel" and role("app/worker.py") == "app"


# Calls that read the clock, randomness, the environment or files. Lucy's worker runs its
# workflows without Temporal's sandbox (``app.worker.workflow_runner``), so nothing stops them at
# run time: these rules read every line workflow code can run (the workflow role, the contracts
# and the pure modules it may import).
# (``workflow.now()``, ``workflow.random()``, ``workflow.uuid4()`` and ``asyncio.sleep`` are
# Temporal's deterministic versions and are fine.)
NONDETERMINISTIC_CALLS = (
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "date.today",
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.perf_counter",
    "time.sleep",
    "uuid.uuid1",
    "uuid.uuid4",
    "os.getenv",
    "os.urandom",
    "asyncio.wait",
    "asyncio.as_completed",
)
NONDETERMINISTIC_BUILTINS = ("open", "input", "breakpoint")
NONDETERMINISTIC_MODULES = ("random", "secrets")  # any use of the module (workflow.random() is fine)


def _nondeterministic(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in NONDETERMINISTIC_BUILTINS or any(
                name == c or name.endswith("." + c) for c in NONDETERMINISTIC_CALLS
            ):
                found.append(f"{path.name}:{node.lineno}: {name}()")
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.extend(
                f"{path.name}:{node.lineno}: import {n}"
                for n in names
                if n.split(".")[0] in NONDETERMINISTIC_MODULES
            )
    return found


def _runs_in_workflows(path: Path) -> bool:
    """Code a workflow runs: the workflow role, the contracts, the pure modules it may import."""
    module = str(path.relative_to(ROOT)).removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return role(module) in ("workflow", "contracts") or _pure(module)


def test_workflows_never_read_the_clock_randomness_or_the_environment():
    read = [path for path in _all_modules() if _runs_in_workflows(path)]
    assert {"redact.py", "text.py", "ids.py", "task.py", "workflow.py"} <= {p.name for p in read}
    problems = [p for path in read for p in _nondeterministic(path)]
    assert not problems, problems


def test_the_determinism_checker_sees_a_violation(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import datetime, os, random\n"
        "from temporalio import workflow\n"
        "def f():\n"
        "    workflow.now(), workflow.random().random()\n"
        "    return datetime.datetime.now(), os.environ['X'], random.random(), open('f')\n"
        "from secrets import token_hex\n"
        "breakpoint()\n"
    )
    found = _nondeterministic(bad)
    assert sorted(f.split(":")[1] for f in found) == ["1", "5", "5", "5", "6", "7"], found


FORBIDDEN = {
    # role -> roles it may not import
    "activities": {"workflow", "listeners", "app"},
    "listeners": {"workflow", "activities", "app"},
    "shared": {"workflow", "activities", "listeners", "app"},
    "kernel": {"workflow", "activities", "listeners", "shared", "contracts", "app"},
}


def _forbidden_imports(kind: str) -> list[tuple[str, str]]:
    return [
        (str(p.relative_to(ROOT)), m)
        for p in _of_role(kind)
        for m, _ in _imports(p)
        if role(m) in FORBIDDEN[kind]
    ]


def test_activities_never_import_workflows_or_listeners():
    assert not _forbidden_imports("activities")


def test_listeners_never_import_activities_or_workflows():
    assert not _forbidden_imports("listeners")


def test_shared_capability_code_imports_no_role():
    assert not _forbidden_imports("shared")


def test_kernel_imports_no_capability():
    assert not _forbidden_imports("kernel")


def test_old_top_level_packages_are_gone():
    assert not [d for d in ("workflows", "activities", "ingress") if (ROOT / d).exists()]


def test_the_checker_sees_a_violation(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nfrom temporalio import workflow\nwith workflow.unsafe.imports_passed_through():\n"
        "    import httpx\n"
    )
    assert _imports(bad) == [("os", False), ("temporalio", False), ("httpx", True)]
    assert role("capabilities.task.activities.llm") in FORBIDDEN["listeners"]


MAX_MODULE_LINES = 400  # the "about 400": a module has one job and reads in one sitting


def test_modules_stay_small():
    big = {
        str(p.relative_to(ROOT)): n
        for p in _all_modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not big, big


def test_every_module_and_package_says_what_it_does():
    silent = [
        str(p.relative_to(ROOT))
        for p in _all_modules()
        if (p.name == "__init__.py" or p.read_text().strip())
        and not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert not silent, silent
    folders = {p.parent for p in _all_modules()}
    unnamed = [str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()]
    assert not unnamed, unnamed


MAX_FUNCTION_LINES = 60  # the "short functions": one job each, read without scrolling
# Functions allowed over the limit: none now. A name put here that is short fails the test too.
LONG_FUNCTIONS_ALLOWED: set[str] = set()


def _long_functions(path: Path) -> dict[str, int]:
    """``path:name`` -> lines, for every function (nested ones too) over MAX_FUNCTION_LINES."""
    rel = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    return {
        f"{rel}:{node.name}": n
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (n := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    }


def test_functions_stay_short():
    long = {k: n for p in _all_modules() for k, n in _long_functions(p).items()}
    assert not {k: n for k, n in long.items() if k not in LONG_FUNCTIONS_ALLOWED}, long
    fixed = LONG_FUNCTIONS_ALLOWED - long.keys()
    assert not fixed, f"now short, remove from LONG_FUNCTIONS_ALLOWED: {sorted(fixed)}"


def test_the_function_length_checker_sees_a_long_function(tmp_path: Path):
    src = tmp_path / "long.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    src.write_text(f"def short():\n    return 1\n\n\nasync def long():\n{body}")
    assert _long_functions(src) == {"long.py:long": MAX_FUNCTION_LINES + 1}
