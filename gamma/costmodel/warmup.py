"""Compile (and cache) the numba kernel by evaluating one tiny mapping."""

from __future__ import annotations

import time


def warm_up() -> float:
    """Evaluate a 1-level and a 2-level mapping once; returns the seconds it took."""
    from gamma.costmodel import evaluate
    from gamma.hardware import Hardware
    from gamma.mapping import Cluster, Directive, Level, Mapping
    from gamma.workloads.layer import Layer

    t0 = time.perf_counter()
    layer = Layer("CONV", K=4, C=2, Y=3, X=3, R=1, S=1)
    hw = Hardware(num_pes=4, l1_size=512, l2_size=4096, noc_bw=64, offchip_bw=64)
    top = Level((Directive("Spatial", "K", 1, 1), Directive("Temporal", "C", 1, 1)))
    inner = Level((Directive("Spatial", "C", 1, 1),), Cluster(2))
    evaluate(layer, hw, [Mapping((top,)), Mapping((top, inner))])
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"cost-model kernel ready in {warm_up():.1f} s")
