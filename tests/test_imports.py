"""The import rules of the developers' guide, checked on the source (ast) of every module, and
the lazy registry checked on a real job:

- the cost model (gamma/costmodel) imports no search or tracking module, nor mlflow;
- optimizers (gamma/optimizers) and baselines reach the cost model only through the objective;
- only gamma/tracking.py imports mlflow (in gamma/, baselines/, run.py and scripts/);
- ``gamma`` never imports ``baselines``;
- a GAMMA job imports neither nevergrad nor scikit-optimize; building a baseline does.

Every import statement counts, also those inside functions. Each rule reports how many imports
it checked and fails if it checked none.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_of(path: Path) -> str:
    """``gamma/optimizers/base.py`` -> ``gamma.optimizers.base`` (packages: their ``__init__``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every module name an import statement of ``source`` may load: ``import a.b`` gives
    ``a.b``; ``from a import b`` gives ``a`` and ``a.b`` (``b`` may be a submodule); relative
    imports are resolved against ``module``."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def sources(*patterns: str) -> list[Path]:
    return sorted({p for pat in patterns for p in ROOT.glob(pat)})


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(files: list[Path], forbidden: tuple[str, ...]) -> tuple[int, list[str]]:
    """(imports checked, "file: name" for each forbidden import) over ``files``."""
    checked, bad = 0, []
    for path in files:
        names = imported_names(path.read_text(encoding="utf-8"), module_of(path),
                               path.name == "__init__.py")
        checked += len(names)
        bad += [f"{path.relative_to(ROOT)}: {n}" for n in names if under(n, forbidden)]
    return checked, bad


ALL = ("gamma/**/*.py", "baselines/**/*.py", "run.py", "scripts/*.py")
RULES = {
    "the cost model imports no search, objective, result or tracking module": (
        sources("gamma/costmodel/**/*.py"),
        ("gamma.mapspace", "gamma.optimizers", "gamma.objectives", "gamma.search", "gamma.results",
         "gamma.tracking", "gamma.analysis", "mlflow", "baselines")),
    "the map space imports nothing of the cost model": (
        sources("gamma/mapspace/**/*.py"), ("gamma.costmodel",)),
    "optimizers and baselines reach the cost model only through the objective": (
        sources("gamma/optimizers/**/*.py", "baselines/**/*.py"), ("gamma.costmodel",)),
    "only gamma/tracking imports mlflow": (
        [p for p in sources(*ALL) if not p.is_relative_to(ROOT / "gamma" / "tracking")],
        ("mlflow",)),
    "gamma never imports baselines": (sources("gamma/**/*.py"), ("baselines",)),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_import_rule(rule: str, record_property) -> None:
    files, forbidden = RULES[rule]
    checked, bad = violations(files, forbidden)
    record_property("imports_checked", checked)
    print(f"{rule}: {checked} imports in {len(files)} files checked")
    assert files and checked > 0, "the rule checked nothing"
    assert not bad, f"{rule}: {bad}"


def test_scripts_and_run_py_are_checked_for_mlflow() -> None:
    files = RULES["only gamma/tracking imports mlflow"][0]
    assert {ROOT / "run.py", ROOT / "scripts" / "compare.py", ROOT / "gamma" / "search" / "job.py",
            ROOT / "gamma" / "analysis" / "compare.py"} <= set(files)
    assert ROOT / "gamma" / "tracking" / "reader.py" not in files


def test_the_checker_finds_a_forbidden_import() -> None:
    src = ("import numpy as np\nfrom gamma import costmodel\n"
           "def f():\n    from ..costmodel.kernel import run\n    import mlflow.tracking\n")
    names = imported_names(src, "gamma.optimizers.x")
    assert names == ["numpy", "gamma", "gamma.costmodel", "gamma.costmodel.kernel",
                     "gamma.costmodel.kernel.run", "mlflow.tracking"]
    assert [n for n in names if under(n, ("gamma.costmodel",))] == names[2:5]
    assert [n for n in names if under(n, ("mlflow",))] == ["mlflow.tracking"]


def imported_top_level(stderr: str) -> set[str]:
    """Top-level package names in ``python -X importtime`` output."""
    out = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "package":
                out.add(name.split(".")[0])
    return out


def test_a_gamma_job_imports_neither_nevergrad_nor_skopt(tmp_path: Path) -> None:
    """The normal path on a tiny GAMMA search: the baselines are known by name (entry points)
    without their package being imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "run.py"),
                           "tracking.enabled=false", "layers=[2]", "budget=200",
                           "optimizer.population=20", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "layer   2 CONV K64 C64 Y56 X56 R3 S3" in proc.stdout
    loaded = imported_top_level(proc.stderr)
    assert {"gamma", "hydra", "numba"} <= loaded
    assert not {"baselines", "nevergrad", "skopt", "sklearn"} & loaded


def test_the_library_finds_and_builds_a_baseline_by_name() -> None:
    """Without importing ``baselines`` by hand: the names come from the entry points, and
    building one imports its library (and only then)."""
    code = ("import sys\n"
            "from gamma.optimizers import available, make_optimizer\n"
            "assert {'stdga', 'pso', 'cma', 'de', 'tbpsa', 'bo'} <= set(available())\n"
            "assert not {'baselines', 'nevergrad', 'skopt'} & set(sys.modules)\n"
            "make_optimizer('cma')\n"
            "assert 'nevergrad' in sys.modules and 'skopt' not in sys.modules\n"
            "make_optimizer('bo')\n"
            "assert 'skopt' in sys.modules\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


# --- no import cycle ---------------------------------------------------------------------------
def imported_modules(source: str, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that the import statements of ``source`` (top-level and inside
    functions) load by name: ``import a.b`` -> ``a.b``; ``from a import b`` -> ``a.b`` where
    that is a module, else ``a`` (a name defined in ``a``). The parent packages Python
    initializes on the way are not counted: they do not use the importing module."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = imported_names(ast.unparse(node), module, is_package)[0]
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out |= {sub} if sub in modules else ({base} if base in modules else set())
    out.discard(module)
    return out


def module_graph() -> dict[str, set[str]]:
    """gamma's modules and, for each, the gamma modules it imports (:func:`imported_modules`).
    A package's ``__init__`` is the module of the package's name."""
    files = {module_of(p): p for p in sources("gamma/**/*.py")}
    return {name: imported_modules(path.read_text(encoding="utf-8"), name,
                                   path.name == "__init__.py", set(files))
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a list of modules, first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle_in_gamma() -> None:
    graph = module_graph()
    edges = sum(len(d) for d in graph.values())
    print(f"{len(graph)} modules, {edges} import edges checked")
    assert len(graph) > 40 and edges > 100, "the graph checked nothing"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_function_level_cycle() -> None:
    """A cycle closed only by an import inside a function is found, through package names."""
    graph = {"gamma.a": {"gamma.b"}, "gamma.b": {"gamma.c"}, "gamma.c": set()}
    assert find_cycle(graph) is None
    src = "def f():\n    from gamma.a import thing\n"
    graph["gamma.c"] = imported_modules(src, "gamma.c", False, set(graph))
    assert find_cycle(graph) == ["gamma.a", "gamma.b", "gamma.c", "gamma.a"]
