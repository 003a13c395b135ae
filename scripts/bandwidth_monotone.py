"""Does more bandwidth ever make a mapping slower in the cost model? (docs/codesign.md, "Not
done yet": why NoC and off-chip bandwidths are not hardware genes.)

    python scripts/bandwidth_monotone.py [--model resnet18] [--samples 2000] [--seed 0]

Per unique layer of the model, ``--samples`` random mappings of the map space (S2, the edge
platform) are evaluated with the platform's NoC and off-chip bandwidths scaled together by
1/4, 1/2, 1, 2 and 4; prints how many (mapping, doubling) pairs the cost model ran at both
scales (not rejected by it; the search's own feasibility rules are not applied) and in how many
the latency (cycles) grew.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np
from omegaconf import OmegaConf

from gamma.search.api import compose
from gamma.search.setup import build_setup, make_objective

#: The bandwidth scales compared, each against the one before.
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    cfg = OmegaConf.to_container(compose([f"model={a.model}"]), resolve=True)
    setup = build_setup(cfg)
    rng = np.random.default_rng(a.seed)
    pairs = grew = 0
    for u in setup.todo:
        obj = make_objective(cfg, setup.unique[u], setup.hw, a.samples * len(SCALES))
        encoded = obj.costmodel.encode(obj.layer, obj.space.decode(obj.space.random(a.samples, rng)))
        before = None
        for f in SCALES:
            hw = replace(setup.hw, noc_bw=int(setup.hw.noc_bw * f),
                         offchip_bw=int(setup.hw.offchip_bw * f))
            res = obj.costmodel.evaluate(obj.layer, hw, encoded)
            cycles = np.where(res.rejected, np.inf, res.runtime)
            if before is not None:
                both = np.isfinite(before) & np.isfinite(cycles)
                pairs += int(both.sum())
                grew += int((cycles[both] > before[both]).sum())
            before = cycles
    print(f"{a.model}: {len(setup.todo)} unique layers, {pairs:,} (mapping, doubled bandwidth) "
          f"pairs run at both scales; latency grew with more bandwidth in {grew:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
