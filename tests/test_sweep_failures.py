"""Bad input in a sweep (issue 18): numbers written in a sweep's grid (``hydra.sweeper.params``)
or in the config files of the options its grid chooses end the sweep before any job with
``error: ...`` naming the file, line and field; a job that fails on its own (a setting only the
job checks) lets the other jobs finish, and the sweep then names it and exits 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from gamma.results.layout import read_results
from gamma.search.strict_numbers import yaml_number_problems
from gamma.search.sweep import CheckSweep
from jobs import ROOT

GRID = "# @package _global_\nbudget: 100\nhydra:\n  sweeper:\n    params:\n      budget: {budget}\n      seed: 0,1\n"
K_1_0 = "name: mine\nlayers:\n  - {type: CONV, K: 1_0, C: 3, Y: 8, X: 8}\n"


def user_conf(tmp_path: Path, grid: str = "1_0,20") -> Path:
    """A user's config folder (``hydra.searchpath``): an experiment with ``grid`` as its budget
    grid and a model whose K is written ``1_0``."""
    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True)
    (conf / "model").mkdir()
    (conf / "experiment" / "mygrid.yaml").write_text(GRID.format(budget=grid))
    (conf / "model" / "mine.yaml").write_text(K_1_0)
    return conf


def test_grid_values_with_an_underscore_are_named():
    """Hydra's sweeper reads each grid value with its override grammar, quoted in YAML or not."""
    text = ("hydra:\n  sweeper:\n    params:\n      budget: 1_0,20\n      seed: '0,2_0'\n"
            "      label: run_1_0,b\n      optimizer: gamma,cma\n      tag: 1_0\n")
    assert list(yaml_number_problems(text)) == [
        (4, "hydra.sweeper.params.budget", "'1_0' is not an integer (digits 0-9 only); Hydra would read it as 10"),
        (5, "hydra.sweeper.params.seed", "'2_0' is not an integer (digits 0-9 only); Hydra would read it as 20"),
        (8, "hydra.sweeper.params.tag", "'1_0' is not an integer (digits 0-9 only); YAML 1.1 reads it as 10"),
    ]


@pytest.mark.parametrize("overrides, file, line, field, reason", [
    (["experiment=mygrid"], "experiment/mygrid.yaml", 6, "hydra.sweeper.params.budget",
     "'1_0' is not an integer (digits 0-9 only); Hydra would read it as 10"),
    (["model=resnet18,mine"], "model/mine.yaml", 3, "layers[0].K",
     "'1_0' is not an integer (digits 0-9 only); YAML 1.1 reads it as 10"),
])
def test_a_sweep_checks_its_grid_and_its_options_files_before_it_launches(tmp_path, capsys, overrides,
                                                                         file, line, field, reason):
    """The launching process's first callback, before a tracking server or any job starts."""
    conf = user_conf(tmp_path)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        config = GlobalHydra.instance().hydra.compose_config(
            "config", [f"hydra.searchpath=[file://{conf}]", *overrides], run_mode=RunMode.MULTIRUN,
            with_log_configuration=False)
    with pytest.raises(SystemExit) as stop:
        CheckSweep().on_multirun_start(config)
    assert stop.value.code == 1
    assert capsys.readouterr().err == f"error: {conf / file}: line {line}: field {field}: {reason}\n"


def test_the_project_experiments_pass_the_sweep_check(capsys):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        config = GlobalHydra.instance().hydra.compose_config(
            "config", ["experiment=fig6", "model=resnet18,vgg16"], run_mode=RunMode.MULTIRUN,
            with_log_configuration=False)
    CheckSweep().on_multirun_start(config)
    assert capsys.readouterr().err == ""


def run_sweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=basic",
                           "tracking.enabled=false", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)


def test_run_py_ends_a_sweep_with_a_bad_grid_before_any_job(tmp_path):
    conf = user_conf(tmp_path)
    proc = run_sweep("experiment=mygrid", f"hydra.searchpath=[file://{conf}]",
                     f"hydra.sweep.dir={tmp_path / 's'}")
    assert proc.returncode == 1
    assert proc.stderr == (f"error: {conf / 'experiment' / 'mygrid.yaml'}: line 6: field "
                           "hydra.sweeper.params.budget: '1_0' is not an integer (digits 0-9 only); "
                           "Hydra would read it as 10\n")
    assert not list((tmp_path / "s").glob("*"))


def test_a_failed_job_lets_the_others_finish_and_the_sweep_exits_1(tmp_path):
    """Job 1's seed is refused by the job itself; job 2 runs and keeps its results; the sweep
    names job 1 with its error after both and exits 1."""
    sweep = tmp_path / "s"
    proc = run_sweep("layers=[1]", "budget=50", "seed=-1,0", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.endswith(
        f"error: 1 of 2 jobs of the sweep failed (the others' results are kept in {sweep}):\n"
        "  job 1 [-1] (budget=50,layers=[1],seed=-1): seed must be a non-negative integer, got -1\n")
    done = read_results(sweep / "budget=50,layers=[1],seed=0" / "results.json")
    assert done["status"] == "finished" and len(done["layers"]) == 1
    assert (sweep / "sweep_summary.txt").is_file()
