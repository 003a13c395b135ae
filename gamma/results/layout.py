"""results.json on disk: every unique layer written once, a schema checked before use.

In memory (a job's ``results``, what every reader works on) each record of ``layers`` has every
field of :func:`gamma.results.records.layer_record`. On disk (``"layout": "unique"``) a unique
layer's record (its search, history, best outputs, mapping, mapping text, front) is written once
in ``unique`` (a list of records, each with its ``unique_index``), and ``layers`` holds one line
per model layer: its ``index`` and ``unique_index``, plus any field whose value differs from
its unique layer's. The mapping text is the first layer's (a layer's own text, with its name, is
``mappings/layer_XX.m``). So a model of 100,000 layers of a few shapes writes a file of a few
MB. :func:`read_results` reads either layout (files written before this one have every field
in ``layers``) and checks the result against :func:`check_results` before a caller trusts it
(resume, scripts/mlflow_import.py, compare, the paper report).

Units as in :mod:`gamma.results.records`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from gamma.errors import GammaError

#: ``layout`` of a results.json with a ``unique`` table.
UNIQUE_LAYOUT = "unique"
#: Per-layer fields never repeated in ``layers`` (a layer's own mapping text is its .m file).
SHARED_ONLY = ("mapping_text",)
#: results.json's ``status`` values.
STATUSES = ("running", "finished", "failed", "killed")


class ResultsFileError(GammaError):
    """A results.json that is not one gamma wrote: ``where`` names the entry."""

    def __init__(self, source: str, where: str, reason: str) -> None:
        self.source, self.where, self.reason = source, where, reason
        super().__init__(f"{source}: {where}: {reason}" if where else f"{source}: {reason}")


# --- writing --------------------------------------------------------------------------------------
def packed(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` in the on-disk layout (a shallow copy; ``results`` is not changed)."""
    unique: dict[int, dict[str, Any]] = {}
    stubs = []
    for r in results.get("layers") or []:
        u = r["unique_index"]
        base = unique.get(u)
        if base is None:
            base = unique[u] = {k: v for k, v in r.items() if k != "index"}
        stub = {"index": r["index"], "unique_index": u}
        for k, v in r.items():
            if k in stub or k in SHARED_ONLY:
                continue
            if k not in base or (base[k] is not v and base[k] != v):  # shared: no deep compare
                stub[k] = v
        stubs.append(stub)
    out = {k: v for k, v in results.items() if k != "layers"}
    out["layout"] = UNIQUE_LAYOUT
    out["unique"] = [unique[u] for u in sorted(unique)]
    out["layers"] = stubs
    return out


def dumps(data: dict[str, Any]) -> str:
    """JSON text, indented one space per level; a record of numbers and strings only (each of
    ``layers``) and a list without records (a history) take one line each, so 100,000 layers
    make 100,000 short lines. Non-finite numbers are an error (``null`` is written for them
    upstream)."""
    return _render(data, 0) + "\n"


def _render(value: Any, depth: int) -> str:
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {_render(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(x, dict) for x in value):
        items = [json.dumps(x, allow_nan=False) if isinstance(x, dict) and not _nested(x)
                 else _render(x, depth + 1) for x in value]
        return "[\n" + ",\n".join(inner + x for x in items) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def _nested(d: dict[str, Any]) -> bool:
    """Whether a dict holds a dict or list (then it is indented; else written on one line)."""
    return any(isinstance(v, (dict, list)) for v in d.values())


def write_results(path: str | Path, results: dict[str, Any]) -> None:
    """Write ``results`` to ``path`` in the on-disk layout, atomically (a temporary file in the
    same folder, then a rename): a failed write (disk full, file-size limit, read-only folder)
    raises ``OSError`` and leaves the previous file as it was."""
    write_text_atomic(path, dumps(packed(results)))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename. An ``OSError``
    (its ``filename`` is ``path``) leaves ``path`` as it was and no temporary file behind."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def write_failure(e: OSError) -> str:
    """What a failed write says: the file and the reason (e.g. ``cannot write /run/results.json:
    No space left on device``)."""
    where = f" {e.filename}" if e.filename else ""
    return f"cannot write{where}: {e.strerror or e}"


# --- reading --------------------------------------------------------------------------------------
def read_results(path: str | Path, source: str | None = None) -> dict[str, Any]:
    """results.json at ``path`` (a file, or a run folder holding one) in the in-memory layout,
    after :func:`check_results`; a :class:`ResultsFileError` (a :class:`GammaError`) naming the
    file and the entry when it cannot be read or has another shape."""
    p = Path(path)
    p = p / "results.json" if p.is_dir() else p
    source = source or str(p)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ResultsFileError(source, "", f"cannot read it: {e.strerror or e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ResultsFileError(source, "", f"not JSON: {e}") from None
    return unpacked(data, source)


def unpacked(data: Any, source: str = "results.json") -> dict[str, Any]:
    """A results.json's data in the in-memory layout (every field in each layer record), after
    :func:`check_results`."""
    check_top(data, source)
    if data.get("layout") == UNIQUE_LAYOUT:
        data = _expand(data, source)
    check_results(data, source)
    return data


def _expand(data: dict[str, Any], source: str) -> dict[str, Any]:
    table = data.get("unique")
    if not isinstance(table, list):
        raise ResultsFileError(source, "unique", f"must be a list of records, got {_kind(table)}")
    unique: dict[int, dict[str, Any]] = {}
    for n, r in enumerate(table):
        if not isinstance(r, dict) or not _is_int(r.get("unique_index")):
            raise ResultsFileError(source, f"unique[{n}]", "must be a record with an integer "
                                                           "'unique_index'")
        unique[r["unique_index"]] = r
    layers = []
    for n, stub in enumerate(data["layers"]):
        if not isinstance(stub, dict):
            raise ResultsFileError(source, f"layers[{n}]", f"must be a record, got {_kind(stub)}")
        base = unique.get(stub.get("unique_index"))
        if base is None:
            raise ResultsFileError(source, f"layers[{n}]", f"unique_index "
                                   f"{stub.get('unique_index')!r} is not in the unique table")
        layers.append({**base, **stub})
    out = {k: v for k, v in data.items() if k not in ("unique", "layout")}
    out["layers"] = layers
    return out


# --- the schema -----------------------------------------------------------------------------------
def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)
            and math.isfinite(x))


def _kind(x: Any) -> str:
    return f"{type(x).__name__} {x!r}"[:80]


def _number_or_null(x: Any) -> bool:
    return x is None or _is_number(x)


def _history(x: Any) -> bool:
    return isinstance(x, list) and all(
        isinstance(p, list) and len(p) == 2 and _is_int(p[0]) and _number_or_null(p[1]) for p in x)


#: Layer record fields: (check, what it must be).
LAYER_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "index": (lambda x: _is_int(x) and x >= 1, "a positive integer"),
    "unique_index": (lambda x: _is_int(x) and x >= 0, "a non-negative integer"),
    "shape": (lambda x: isinstance(x, str), "a string"),
    "feasible": (lambda x: isinstance(x, bool), "true or false"),
    "samples_used": (lambda x: _is_int(x) and x >= 0, "a non-negative integer"),
    "compute_bound_cycles": (lambda x: _is_number(x) and x >= 0, "a non-negative number"),
    "best_cost": (_number_or_null, "a number or null"),
    "best": (lambda x: x is None or isinstance(x, dict), "a record or null"),
    "mapping": (lambda x: x is None or isinstance(x, dict), "a record or null"),
    "mapping_text": (lambda x: x is None or isinstance(x, str), "a string or null"),
    "history": (_history, "a list of [samples, best cost or null] pairs"),
    "costmodel_s": (_is_number, "a number (seconds)"),
    "search_s": (_is_number, "a number (seconds)"),
}
#: Outputs a feasible layer's ``best`` must have (cycles, nJ).
BEST_FIELDS = ("runtime_cycles", "energy_nJ")


def check_top(data: Any, source: str) -> None:
    """The top level: a record with a known ``status`` and a list ``layers``."""
    if not isinstance(data, dict):
        raise ResultsFileError(source, "", f"expected a record (a JSON object) with status and "
                                           f"layers, got {_kind(data)}")
    if data.get("status") not in STATUSES:
        raise ResultsFileError(source, "status", f"must be one of {', '.join(STATUSES)}, got "
                                                 f"{data.get('status')!r}")
    if not isinstance(data.get("layers"), list):
        raise ResultsFileError(source, "layers", f"must be a list of layer records, got "
                                                 f"{_kind(data.get('layers'))}")
    for key in ("wall_s",):
        if key in data and not _number_or_null(data[key]):
            raise ResultsFileError(source, key, f"must be a number, got {_kind(data[key])}")
    if data.get("mlflow") is not None and not isinstance(data["mlflow"], dict):
        raise ResultsFileError(source, "mlflow", f"must be a record or null, got "
                                                 f"{_kind(data['mlflow'])}")


def check_results(data: Any, source: str = "results.json") -> None:
    """A :class:`ResultsFileError` unless ``data`` has the shape of a results.json in memory:
    the top level of :func:`check_top`; each layer record with the fields of
    :data:`LAYER_FIELDS` (each of its kind), a feasible one with ``best`` holding
    :data:`BEST_FIELDS` as numbers, and no layer index twice."""
    check_top(data, source)
    seen: set[int] = set()
    checked: set[tuple[str, int]] = set()  # lists and records shared by layers: checked once
    for n, r in enumerate(data["layers"]):
        where = f"layers[{n}]"
        if not isinstance(r, dict):
            raise ResultsFileError(source, where, f"must be a layer record, got {_kind(r)}")
        if _is_int(r.get("index")):
            where += f" (layer {r['index']})"
        for key, (ok, what) in LAYER_FIELDS.items():
            if key not in r:
                raise ResultsFileError(source, where, f"'{key}' is missing")
            value = r[key]
            if isinstance(value, (list, dict)):
                if (key, id(value)) in checked:
                    continue
                checked.add((key, id(value)))
            if not ok(value):
                raise ResultsFileError(source, where, f"'{key}' must be {what}, got {_kind(value)}")
        if r["feasible"]:
            bad = [k for k in BEST_FIELDS if not _is_number((r["best"] or {}).get(k))]
            if bad:
                raise ResultsFileError(source, where, f"a feasible layer needs 'best' with "
                                                      f"'{bad[0]}' as a number")
        if r["index"] in seen:
            raise ResultsFileError(source, where, f"layer {r['index']} is listed twice")
        seen.add(r["index"])
