"""Checking the cost model against MAESTRO's recorded outputs (reference-case JSONL files).

A case holds ``id``, ``layer``, ``hw`` and ``mapping`` (the inputs: the only fields a prediction
uses) and, where MAESTRO ran, ``status``, ``gamma_valid`` and ``outputs`` (what it reported).
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from gamma.costmodel.evaluate import OK_VALID, REJECTED, evaluate
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapping import Mapping
from gamma.workloads.layer import Layer


def read_cases(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file (``.gz`` too); a bad line raises an error naming
    the file and the line."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise GammaError(f"{path}:{n}: not a JSON object: {e.msg}") from None


def predict(case: dict[str, Any]) -> dict[str, Any]:
    """Our prediction for one case, from its ``id``, ``layer``, ``hw`` and ``mapping`` only:
    ``{"id", "status": "ok"|"error", "valid", "reason", "outputs"}``."""
    try:
        layer = Layer.from_dict(case["layer"])
        hw = Hardware.from_dict(case["hw"])
        mapping = Mapping.from_dict(case["mapping"])
        res = evaluate(layer, hw, [mapping])
    except (GammaError, ValueError, KeyError, TypeError) as e:
        return {"id": case.get("id"), "status": "error", "valid": False,
                "reason": f"cannot evaluate: {e}", "outputs": {}}
    verdict, reason = res.verdict(0)
    if verdict == REJECTED:
        return {"id": case.get("id"), "status": "error", "valid": False, "reason": reason,
                "outputs": {}}
    outputs = {k: _json_number(v) for k, v in res.outputs(0).items()}
    return {"id": case.get("id"), "status": "ok", "valid": verdict == OK_VALID, "reason": reason,
            "outputs": outputs}


def _json_number(v: float) -> float | int | str:
    if math.isnan(v) or math.isinf(v):
        return str(v)
    return int(v) if float(v).is_integer() else v


# Agreement criteria of the foundation issue: (outputs, tolerance, required share).
CRITERIA: list[tuple[str, tuple[str, ...], float, float]] = [
    ("runtime (exact)", ("runtime_cycles",), 0.0, 0.99),
    ("L1 size req (exact)", ("l1_size_req",), 0.0, 0.99),
    ("L2 size req (exact)", ("l2_size_req",), 0.0, 0.99),
    ("energy (0.1%)", ("energy_nJ",), 1e-3, 0.99),
    ("NoC BW req peak/avg (1%)", ("noc_bw_req", "avg_bw_req"), 1e-2, 0.95),
    ("off-chip BW req (1%)", ("offchip_bw_req",), 1e-2, 0.95),
    ("area (1%)", ("area",), 1e-2, 0.95),
    ("power (1%)", ("power",), 1e-2, 0.95),
    ("num MACs (exact)", ("num_macs",), 0.0, 0.0),
    ("access counts (0.1%)", tuple(f"{t}_{a}" for t in ("input", "filter", "output")
                                   for a in ("l1_read", "l1_write", "l2_read", "l2_write")), 1e-3, 0.0),
    ("avg utilized PEs (0.1%)", ("avg_utilized_pes",), 1e-3, 0.0),
]


def _close(ours: Any, ref: Any, tol: float) -> bool:
    if isinstance(ref, str) or isinstance(ours, str):  # "nan", "-nan", "inf" as MAESTRO prints them
        return str(ref).lstrip("-") == str(ours).lstrip("-") == "nan" or str(ref) == str(ours)
    if tol == 0.0:
        return float(ours) == float(ref)
    # MAESTRO prints about 6 significant digits; allow that rounding on top of the tolerance.
    return abs(float(ours) - float(ref)) <= tol * abs(float(ref)) + 5e-6 * abs(float(ref)) + 1e-9


@dataclass
class AgreementRow:
    name: str
    matched: int
    total: int
    required: float
    mismatches: list[str]

    @property
    def share(self) -> float:
        return self.matched / self.total if self.total else 1.0

    @property
    def passed(self) -> bool:
        return self.share >= self.required


def agreement(cases: Iterable[dict[str, Any]], predictions: Iterable[dict[str, Any]]) -> list[AgreementRow]:
    """Agreement table: verdict over all cases; outputs over cases MAESTRO ran with runtime >= 1."""
    rows = [AgreementRow("verdict (ok/valid, ok/invalid, error)", 0, 0, 0.99, [])]
    rows += [AgreementRow(name, 0, 0, req, []) for name, _, _, req in CRITERIA]
    for case, pred in zip(cases, predictions):
        if "status" not in case:
            continue
        ref_verdict = "error" if case["status"] != "ok" else ("valid" if case.get("gamma_valid") else "invalid")
        our_verdict = "error" if pred["status"] != "ok" else ("valid" if pred["valid"] else "invalid")
        rows[0].total += 1
        if ref_verdict == our_verdict:
            rows[0].matched += 1
        else:
            rows[0].mismatches.append(f"{case['id']}: MAESTRO {ref_verdict}, ours {our_verdict}")
        ref_out = case.get("outputs") or {}
        if case["status"] != "ok" or not isinstance(ref_out.get("runtime_cycles"), (int, float)) \
                or ref_out["runtime_cycles"] < 1:
            continue
        for row, (_, keys, tol, _) in zip(rows[1:], CRITERIA):
            row.total += 1
            bad = [k for k in keys if k in ref_out and
                   (k not in pred["outputs"] or not _close(pred["outputs"][k], ref_out[k], tol))]
            if bad:
                k = bad[0]
                row.mismatches.append(f"{case['id']}: {k} MAESTRO {ref_out[k]}, ours {pred['outputs'].get(k)}")
            else:
                row.matched += 1
    return rows


def format_table(rows: list[AgreementRow]) -> str:
    lines = [f"{'output':<40} {'agree':>9} {'share':>8} {'needed':>7}  result",
             "-" * 76]
    for r in rows:
        need = f"{r.required:.0%}" if r.required else "-"
        res = ("PASS" if r.passed else "FAIL") if r.required else "info"
        lines.append(f"{r.name:<40} {r.matched:>4}/{r.total:<4} {r.share:>8.2%} {need:>7}  {res}")
    return "\n".join(lines)
