"""gamma's entry point (Hydra). Interim job until the search lands: evaluate random GAMMA-style
mappings of every unique layer of the model with the cost model and report the best valid one
per layer. Configuration: conf/config.yaml."""

from __future__ import annotations

import math
import time

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from gamma.costmodel import evaluate
from gamma.hardware import Hardware
from gamma.maestro_io import format_dataflow
from gamma.mapspace import MapSpace
from gamma.workload import model_from_config


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    t0 = time.perf_counter()
    model = model_from_config(cfg.model)
    hw = Hardware.from_dict(OmegaConf.to_container(cfg.platform, resolve=True))
    rng = np.random.default_rng(cfg.seed)
    unique, index = model.unique_layers()
    print(f"{model.name}: {len(model.layers)} layers, {len(unique)} unique; {hw.num_pes} PEs; "
          f"{cfg.samples} random mappings per unique layer")
    best = []
    for layer in unique:
        space = MapSpace(layer, hw.num_pes, cfg.levels[0], cfg.levels[1])
        g = space.random(cfg.samples, rng)
        res = evaluate(layer, hw, space.decode(g))
        ok = np.flatnonzero(res.valid)
        if len(ok) == 0:
            best.append(None)
            continue
        i = ok[np.argmin(res.runtime[ok])]
        best.append((res.runtime[i], res.energy[i], format_dataflow(space.to_mapping(g, i))))
    total = 0.0
    bound = 0
    for n, (layer, u) in enumerate(zip(model.layers, index), 1):
        b = best[u]
        bound += math.ceil(layer.macs / hw.num_pes)
        if b is None:
            print(f"{n:>3} {layer.shape:<32} no valid mapping found")
            continue
        total += b[0]
        print(f"{n:>3} {layer.shape:<32} {b[0]:>14,.0f} cycles  {b[1]:>12,.1f} nJ  "
              f"{' '.join(b[2].split())}")
    print(f"total latency {total:,.0f} cycles = {total / bound:.2f}x the compute bound "
          f"({bound:,} cycles); {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
