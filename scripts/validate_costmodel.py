#!/usr/bin/env python
"""Check our cost model against MAESTRO reference cases.

Usage: python scripts/validate_costmodel.py [CASES.jsonl] [--predictions OUT.jsonl] [--show N]
(default: the public MAESTRO cases, tests/data/maestro_public.jsonl.gz)

Predicts every case from its id, layer, hw and mapping only; prints the agreement table where
the file holds MAESTRO's outputs, and with --predictions writes one JSON object per case.
Exits 1 if an agreement criterion fails, 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gamma.costmodel.reference_cases import agreement, format_table, predict, read_cases
from gamma.errors import GammaError

PUBLIC_CASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "maestro_public.jsonl.gz"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="?", default=str(PUBLIC_CASES),
                    help="JSONL file of cases, .gz too (schema: tests/data/README.md)")
    ap.add_argument("--predictions", help="write our predictions here, one JSON object per line")
    ap.add_argument("--show", type=int, default=5, help="mismatches to list per output (default 5)")
    args = ap.parse_args(argv)
    try:
        cases = list(read_cases(args.cases))
    except (OSError, GammaError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    preds = [predict(c) for c in cases]
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as f:
            for p in preds:
                f.write(json.dumps(p) + "\n")
        print(f"wrote {len(preds)} predictions to {args.predictions}")
    rows = agreement(cases, preds)
    if rows[0].total == 0:
        print(f"{len(cases)} cases, none with MAESTRO outputs: nothing to compare")
        return 0
    for r in rows:
        for m in r.mismatches[: args.show]:
            print(f"  [{r.name}] {m}")
    print(f"{len(cases)} cases from {args.cases}")
    print(format_table(rows))
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
