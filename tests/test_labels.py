"""Job labels: every arm of a comparison gets its own, seeds share one (gamma/search/labels.py)."""

from __future__ import annotations

from gamma.search.labels import default_label, job_label, short_setting

DEFAULTS = {"name": "gamma", "population": 200,
            "operators": {"mutation": {"enabled": True, "rate": 0.52}}}


def opt(**changes) -> dict:
    o = {"name": "gamma", "population": 200, "operators": {"mutation": {"enabled": True, "rate": 0.52}}}
    for k, v in changes.items():
        if k == "mutation_enabled":
            o["operators"]["mutation"]["enabled"] = v
        elif k == "mutation_rate":
            o["operators"]["mutation"]["rate"] = v
        else:
            o[k] = v
    return o


def test_default_settings_are_the_optimizer_name():
    assert job_label(opt(), DEFAULTS, ["seed=3", "system=s1", "layers=[2,7]", "budget=1500"]) == "gamma"


def test_changed_optimizer_settings_enter_the_label():
    assert job_label(opt(mutation_enabled=False), DEFAULTS, []) == "gamma mutation=off"
    assert job_label(opt(population=50), DEFAULTS, ["optimizer.population=50"]) == "gamma population=50"
    assert job_label(opt(mutation_rate=0.3), DEFAULTS, []) == "gamma mutation.rate=0.3"


def test_other_overrides_enter_with_their_resolved_value_but_not_the_columns():
    cfg = {"mapspace": {"inner_tiles": "any"}, "guard": False}
    label = job_label(opt(), DEFAULTS, ["mapspace.inner_tiles=any", "guard=false", "seed=1",
                                         "model=vgg16", "tracking.enabled=false",
                                         "hydra/launcher=joblib"], cfg)
    assert label == "gamma inner_tiles=any guard=false"


def test_settings_read_short():
    assert short_setting("operators.crossover.enabled", True) == "crossover=on"
    assert short_setting("selection.elite_ratio", 0) == "elite_ratio=0"


def test_a_codesign_job_is_labelled_apart_from_the_fixed_platform():
    """codesign=digamma changes the result: ``codesign`` and its own overrides (without the
    prefix) enter the label; codesign=off, and codesign settings of a job without co-design,
    change nothing and stay out."""
    cfg = {"optimizer": {"name": "gamma"},
           "codesign": {"name": "digamma", "area_mm2": 0.0904, "operators": {"hw_step": 1.0}}}
    assert job_label(opt(), DEFAULTS, ["codesign=digamma", "seed=2"], cfg) == "gamma codesign"
    assert job_label(opt(), DEFAULTS, ["codesign=digamma", "codesign.area_mm2=0.0904",
                                       "codesign.operators.hw_step=1.0"], cfg) == \
        "gamma codesign area_mm2=0.0904 hw_step=1.0"
    off = {"optimizer": {"name": "gamma"}, "codesign": {"name": "off", "area_mm2": 0.0904}}
    assert job_label(opt(), DEFAULTS, ["codesign=off", "codesign.area_mm2=0.0904"], off) == "gamma"
    assert job_label(opt(), DEFAULTS, [], {**cfg, "guard": False}) == "gamma codesign"
    assert default_label(cfg) == "gamma codesign" and default_label(off) == "gamma"
