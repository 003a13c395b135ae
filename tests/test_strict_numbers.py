"""Numbers in Hydra overrides and config files (issue 18): Hydra's grammar and YAML 1.1 read
``1_0`` as 10; gamma reads integers written with the digits 0-9 only, so each such number ends
with ``error: ...`` naming the override, or the file, line and field (exit 1, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gamma.errors import GammaError
from gamma.search.strict_numbers import (check_config_file, composed_files, override_numbers,
                                         override_problem, yaml_number_problems)
from jobs import ROOT, run_captured


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


# --- overrides --------------------------------------------------------------------------------
@pytest.mark.parametrize("override, number, read", [
    ("budget=1_0", "1_0", "10"),
    ("layers=[1_0]", "1_0", "10"),
    ("layers=[2,1_0]", "1_0", "10"),
    ("budget=10,2_0", "2_0", "20"),  # a sweep
    ("budget=range(1_0,20)", "1_0", "10"),
    ("+x={a:1_0}", "1_0", "10"),
    ("optimizer.time_limit_s=1_0.5", "1_0.5", "10.5"),
])
def test_an_override_number_with_an_underscore_is_named(override, number, read):
    problem = override_problem(override)
    assert problem is not None and problem.startswith(f"override {override}: {number!r} is not ")
    assert problem.endswith(f"Hydra would read it as {read}")


@pytest.mark.parametrize("override", ["budget=10", "label=run_1_0", "label=1_0abc", "label='1_0'",
                                      "+x.1_0=a", "layers=[1,2]", "hydra.run.dir=out/1_0"])
def test_strings_and_plain_numbers_pass(override):
    """A number inside a longer string is a string to Hydra too, and a quoted value is one."""
    assert override_problem(override) is None


def test_the_override_numbers_are_hydras():
    assert override_numbers("layers=[1, 2_0, x]") == ["1", "2_0"]
    assert override_numbers("budget=") == []


@pytest.mark.parametrize("override, number", [("budget=1_0", "1_0"), ("layers=[1_0]", "1_0")])
def test_run_py_refuses_an_override_with_an_underscore(tmp_path, override, number):
    """``python run.py budget=1_0`` searched with budget 10, ``layers=[1_0]`` layer 10."""
    proc = run_cli(override, "tracking.enabled=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1
    assert proc.stderr == (f"error: override {override}: {number!r} is not an integer (digits 0-9 "
                           "only); Hydra would read it as 10\n")
    assert not (tmp_path / "run").exists()


def test_a_sweep_is_refused_before_its_jobs(tmp_path):
    """The sweeper writes its jobs' overrides back from the values (``budget=10``): the command
    line is checked before Hydra starts."""
    proc = run_cli("-m", "budget=1_0,20", "tracking.enabled=false", f"hydra.sweep.dir={tmp_path / 's'}")
    assert proc.returncode == 1
    assert "error: override budget=1_0,20: '1_0' is not an integer" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "s").exists()


def test_the_library_api_refuses_it_too():
    from gamma.search.api import settings

    with pytest.raises(GammaError, match=r"override budget=1_0: '1_0' is not an integer"):
        settings(overrides=["budget=1_0"])


# --- YAML files -----------------------------------------------------------------------------------
def test_yaml_numbers_read_otherwise_than_written_are_named():
    text = ("name: m\nlayers:\n  - {type: CONV, K: 1_0, C: 0x10, Y: 010, X: 1:30, R: 007, S: 3}\n"
            "t: 1_0.5\nu: '1_0'\nv: 1e3\nw: -4\n")
    assert list(yaml_number_problems(text)) == [
        (3, "layers[0].K", "'1_0' is not an integer (digits 0-9 only); YAML 1.1 reads it as 10"),
        (3, "layers[0].C", "'0x10' is not an integer (digits 0-9 only); YAML 1.1 reads it as 16"),
        (3, "layers[0].Y", "'010' is not an integer (digits 0-9 only); YAML 1.1 reads it as 8"),
        (3, "layers[0].X", "'1:30' is not an integer (digits 0-9 only); YAML 1.1 reads it as 90"),
        (4, "t", "'1_0.5' is not a number (no '_' or ':' in numbers); YAML 1.1 reads it as 10.5"),
    ]


def test_every_config_file_of_the_project_passes():
    files = sorted((ROOT / "conf").rglob("*.yaml"))
    assert len(files) > 50
    for path in files:
        check_config_file(path)


def test_the_composed_files_are_the_chosen_options(tmp_path):
    """The first search-path folder holding an option is the one Hydra loads."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "resnet18.yaml").write_text("name: shadowed\n")
    (tmp_path / "model" / "mine.yaml").write_text("name: mine\n")
    conf = ROOT / "conf"
    files = composed_files("config", {"model": "mine", "platform": "edge", "hydra/launcher": "basic",
                                      "arm": None}, [conf, tmp_path])
    assert files == [conf / "config.yaml", tmp_path / "model" / "mine.yaml", conf / "platform" / "edge.yaml"]
    assert composed_files("config", {"model": "resnet18"}, [conf, tmp_path])[1] == conf / "model" / "resnet18.yaml"


def test_a_model_config_with_an_underscore_is_refused_by_file_and_field(tmp_path):
    """A conf/model YAML (here in a search-path folder, as a user's own conf/model/ file) with
    ``K: 1_0``: OmegaConf read 10; the job ends before it searches, naming file, line, field."""
    (tmp_path / "conf" / "model").mkdir(parents=True)
    mine = tmp_path / "conf" / "model" / "mine.yaml"
    mine.write_text("name: mine\nlayers:\n  - {type: CONV, K: 64, C: 3, Y: 8, X: 8}\n"
                    "  - {type: CONV, K: 1_0, C: 3, Y: 8, X: 8}\n")
    proc = run_cli("model=mine", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "tracking.enabled=false",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1
    assert proc.stderr == (f"error: {mine}: line 4: field layers[1].K: '1_0' is not an integer "
                           "(digits 0-9 only); YAML 1.1 reads it as 10\n")
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_yaml_model_file_with_an_underscore_is_refused_by_the_job(tmp_path):
    """``model=file model.path=x.yaml``: the project's reader keeps 1_0 a string, refused by field."""
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nlayers:\n  - {type: CONV, K: 1_0, C: 3, Y: 8, X: 8}\n")
    proc = run_captured(["model=file", f"model.path={path}", "tracking.enabled=false", "budget=100",
                         f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 1
    assert f"error: {path}: layer 1 field 'K': must be a positive integer, got '1_0'" in proc.stderr
    assert "Traceback" not in proc.stderr
