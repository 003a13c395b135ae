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
    "the cost model imports no search or tracking module": (
        sources("gamma/costmodel/**/*.py"),
        ("gamma.optimizers", "gamma.objectives.scalar", "gamma.search.job", "gamma.tracking.writer", "mlflow",
         "baselines")),
    "optimizers and baselines reach the cost model only through the objective": (
        sources("gamma/optimizers/**/*.py", "baselines/**/*.py"), ("gamma.costmodel",)),
    "only gamma/tracking.py imports mlflow": (
        [p for p in sources(*ALL) if p != ROOT / "gamma" / "tracking.py"], ("mlflow",)),
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
    files = RULES["only gamma/tracking.py imports mlflow"][0]
    assert {ROOT / "run.py", ROOT / "scripts" / "compare.py", ROOT / "gamma" / "search.py"} <= set(files)


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
    """The normal path (run.py registers the baselines by name) on a tiny GAMMA search."""
    proc = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "run.py"),
                           "tracking.enabled=false", "layers=[2]", "budget=200",
                           "optimizer.population=20", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "layer   2 CONV K64 C64 Y56 X56 R3 S3" in proc.stdout
    loaded = imported_top_level(proc.stderr)
    assert {"gamma", "baselines", "hydra", "numba"} <= loaded  # the baselines were registered
    assert "nevergrad" not in loaded and "skopt" not in loaded and "sklearn" not in loaded


def test_building_a_baseline_imports_its_library() -> None:
    code = ("import sys, baselines\n"
            "from gamma.optimizers import available, make_optimizer\n"
            "assert {'cma', 'bo'} <= set(available())\n"
            "assert 'nevergrad' not in sys.modules and 'skopt' not in sys.modules\n"
            "make_optimizer('cma')\n"
            "assert 'nevergrad' in sys.modules and 'skopt' not in sys.modules\n"
            "make_optimizer('bo')\n"
            "assert 'skopt' in sys.modules\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
