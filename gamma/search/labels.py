"""A job's label: which arm of a comparison it is, e.g. ``gamma``, ``gamma mutation=off``,
``gamma population=50``, ``cma inner_tiles=any``.

The label is the optimizer's name, then every optimizer setting that differs from the defaults of
its config file (``conf/optimizer/<name>.yaml``), then the other command-line overrides that are
not already a column of the comparison (model, system, platform, objective, budget, layers) and
not the seed; ``optimizer=fixed`` adds its dataflow (``fixed nvdla``, ``fixed file:my.m``); a
co-design job (``codesign=digamma``, docs/codesign.md) adds ``codesign`` and its own overrides
without the ``codesign.`` prefix (``gamma codesign area_mm2=0.0904``): its hardware is searched,
so it is never the fixed-platform arm of the same optimizer. ``codesign=off`` and ``codesign.*`` settings
of a job that is not co-design change nothing and stay out.
Jobs that differ only in their seed or in settings that cannot change the result
(:data:`NO_EFFECT`: ``resume``, ``parallel.*``, ``tracking.*``, ``optima``, ``hydra.*``, ...)
share a label; jobs whose other settings differ never do. Settings are written short: ``optimizer.`` and the ``operators.``/``selection.`` levels are
dropped, and ``X.enabled=false`` reads ``X=off``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gamma.mapspace.dataflows import dataflow_label

#: Settings that cannot change a job's result: where and how it runs (``parallel.workers``
#: gives the same results as 1), resumes, is logged or named, and the optima cache (read only
#: to compare with). They never enter a label, never split an arm in compare.py and never make
#: two runs different jobs. A key matches itself and everything below it.
NO_EFFECT = ("resume", "parallel", "tracking", "optima", "hydra", "label", "experiment",
             "hparams_search")
#: Override keys that never enter a label: the comparison's own columns, the seed, the
#: arm/ablation choice (shown by the optimizer settings it sets) and :data:`NO_EFFECT`.
NOT_IN_LABEL = ("seed", "model", "system", "platform", "objective", "budget", "layers", "arm",
                "optimizer", "ablation", *NO_EFFECT)
#: Override keys (exactly these) that the label already shows in another form.
SHOWN_AS_DATAFLOW = ("dataflow", "dataflow.path", "dataflow.depthwise_path")
#: Config levels left out of a setting's short name.
SILENT_LEVELS = ("operators", "selection")
#: The config group of hardware and mapping co-design (docs/codesign.md); ``off``: none.
CODESIGN = "codesign"


def flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b": value}`` (lists and scalars are leaves)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def short_setting(key: str, value: Any) -> str:
    """``operators.mutation.enabled``, False -> ``mutation=off``; ``population``, 50 ->
    ``population=50``; ``mapspace.inner_tiles``, "any" -> ``inner_tiles=any``."""
    parts = [p for p in key.split(".") if p not in SILENT_LEVELS]
    if parts and parts[-1] == "enabled" and isinstance(value, bool) and len(parts) > 1:
        return f"{'.'.join(parts[:-1])}={'on' if value else 'off'}"
    if len(parts) > 1 and parts[0] in ("mapspace",):
        parts = parts[1:]
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"{'.'.join(parts)}={text}"


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _in_group(key: str, group: str) -> bool:
    return key == group or key.startswith(group + ".") or key.startswith(group + "/")


def codesign_name(config: dict[str, Any] | None) -> str | None:
    """The co-design mode of a job's plain config (``digamma``), None where it has none
    (``codesign=off``, or no codesign group)."""
    name = ((config or {}).get(CODESIGN) or {}).get("name", "off")
    return None if name in ("off", False, None) else str(name)


def codesign_label(config: dict[str, Any] | None, overrides: Sequence[str] = ()) -> list[str]:
    """The label's co-design part: ``codesign`` (``codesign=NAME`` for a mode other than
    digamma) and the job's ``codesign.*`` overrides with their resolved values, e.g.
    ``["codesign", "area_mm2=0.0904"]``; empty for a job that is not co-design."""
    name = codesign_name(config)
    if name is None:
        return []
    parts = [CODESIGN if name == "digamma" else f"{CODESIGN}={name}"]
    cfg = flat(config or {})
    for ov in overrides:
        key = _override_key(ov)
        if "=" in ov and key.startswith(CODESIGN + "."):
            parts.append(short_setting(key.removeprefix(CODESIGN + "."),
                                       cfg.get(key, ov.split("=", 1)[1])))
    return parts


def default_label(config: dict[str, Any]) -> str:
    """The label of a job whose config sets none and whose overrides are unknown (the library
    API, a test's job): the optimizer's name, a fixed dataflow's, the co-design part."""
    parts = [str((config.get("optimizer") or {}).get("name", "?"))]
    flow = dataflow_label(config)
    if flow is not None:
        parts.append(flow)
    return " ".join([*parts, *codesign_label(config)])


def _excluded(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") or key.startswith(k + "/") for k in NOT_IN_LABEL)


def job_label(optimizer: dict[str, Any], optimizer_defaults: dict[str, Any],
              overrides: list[str], config: dict[str, Any] | None = None) -> str:
    """The label of a job with optimizer config ``optimizer`` (its ``name`` first), the defaults
    of that optimizer's config file, and the job's command-line ``overrides`` ("key=value").
    ``config`` (the job's plain config) gives the resolved value of each override."""
    mine = flat({k: v for k, v in optimizer.items() if k != "dataflow"})
    base = flat(optimizer_defaults)
    parts = [str(optimizer.get("name", "?"))]
    flow = dataflow_label(config or {})
    if flow is not None:  # optimizer=fixed: its dataflow, e.g. "fixed nvdla"
        parts.append(flow)
    parts += [short_setting(k, v) for k, v in mine.items()
              if k != "name" and (k not in base or base[k] != v)]
    parts += codesign_label(config, overrides)
    cfg = flat(config or {})
    for ov in overrides:
        key = _override_key(ov)
        if "=" not in ov or _excluded(key) or key in SHOWN_AS_DATAFLOW or _in_group(key, CODESIGN):
            continue
        value = cfg.get(key, ov.split("=", 1)[1])
        parts.append(short_setting(key, value))
    return " ".join(dict.fromkeys(parts))
