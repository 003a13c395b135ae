"""The cost model's public entry point: evaluate a batch of mappings of one layer on one
hardware in one call, with MAESTRO's outputs and a verdict per mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gamma.costmodel import kernel as K
from gamma.costmodel.area_power import area_power
from gamma.costmodel.encode import (PackedMappings, layer_arrays, overflow_rows, pack,
                                    pack_batch)
from gamma.hardware import Hardware
from gamma.mapping import Mapping, MappingBatch
from gamma.workloads.layer import Layer

#: Verdict of one mapping.
OK_VALID, OK_INVALID, REJECTED = "valid", "invalid", "rejected"

#: Error code of a mapping whose sizes the kernel's int64 arithmetic cannot hold
#: (:func:`gamma.costmodel.encode.overflow_rows`); set here, after the kernel.
E_OVERFLOW = 9

#: Why MAESTRO refuses (or crashes on) a mapping, by kernel error code.
REJECT_REASONS = {
    K.E_RS_TILE: "a TemporalMap on R or S must cover the full filter (size == offset == R or S); "
                 "MAESTRO's parser rejects partial R/S tiles",
    K.E_NO_SPATIAL: "a cluster level has no SpatialMap; MAESTRO needs one or two per level",
    K.E_TOO_MANY_SPATIAL: "a cluster level has three or more SpatialMaps; MAESTRO allows at most two",
    K.E_CLUSTER_GT_PES: "the product of the Cluster sizes exceeds num_pes, leaving no top-level "
                        "sub-cluster (MAESTRO crashes with SIGFPE)",
    K.E_ZERO_COMPUTE: "an inner level computes nothing for some top-level step (a tile larger "
                      "than its parent tile makes every inner case empty); MAESTRO crashes with "
                      "SIGFPE in its off-chip bandwidth division",
    K.E_UNSUPPORTED: "a level has both Y and Y' (or X and X') directives, or more directives "
                     f"than the model holds ({K.MAXD} per level)",
    K.E_BAD_SIZE: "a directive size or offset, or a Cluster size, is below 1",
    K.E_BAD_DIM: "a directive names a dimension this layer type does not have "
                 "(CONV: K C R S Y X Y' X'; DSCONV: the same without K; GEMM: M N K); "
                 "MAESTRO stops with 'Dimension K not found' on a K directive of a DSCONV layer",
    E_OVERFLOW: "a size, offset or Cluster above 2^31 - 1, or tiles whose product over the "
                "layer's dimensions exceeds 2^59: the cost model's int64 arithmetic would overflow",
}

# Reference key -> kernel column, for the counts MAESTRO reports per tensor.
_TENSOR_KEYS = {"input": 0, "filter": 1, "output": 2}


@dataclass
class CostResult:
    """Outputs of one cost-model call for ``B`` mappings.

    ``raw[b, K.O_*]`` holds the kernel columns; :meth:`outputs` gives MAESTRO's CSV columns under
    the reference file's key names. ``error[b]`` is 0 or a ``K.E_*`` code (verdict "rejected").
    """

    layer: Layer
    hw: Hardware
    raw: np.ndarray
    error: np.ndarray

    def __len__(self) -> int:
        return int(self.error.shape[0])

    # --- the main numbers, as arrays over the batch -------------------------------------------
    @property
    def runtime(self) -> np.ndarray:
        """Runtime in cycles."""
        return self.raw[:, K.O_RUNTIME]

    @property
    def energy(self) -> np.ndarray:
        """Activity-count energy in nJ (MAESTRO's CSV formula)."""
        return self.raw[:, K.O_ENERGY]

    @property
    def macs(self) -> np.ndarray:
        """MACs as MAESTRO counts them (can differ from the layer's true count)."""
        return self.raw[:, K.O_MACS]

    @property
    def l1_size_req(self) -> np.ndarray:
        """L1 requirement of one innermost PE, in elements."""
        return self.raw[:, K.O_L1_REQ]

    @property
    def l2_size_req(self) -> np.ndarray:
        """L2 requirement at the top level, in elements."""
        return self.raw[:, K.O_L2_REQ]

    @property
    def rejected(self) -> np.ndarray:
        return self.error != K.E_OK

    def invalid_reasons(self, b: int) -> list[str]:
        """GAMMA's validity rule for a mapping MAESTRO ran: runtime >= 1 and 1 <= L1/L2
        requirement <= capacity. Empty when valid."""
        reasons = []
        rt, l1, l2 = self.runtime[b], self.l1_size_req[b], self.l2_size_req[b]
        if rt < 1:
            reasons.append(f"runtime {rt:.0f} < 1 cycle: a tile larger than its dimension makes "
                           "MAESTRO's edge arithmetic degenerate")
        if l1 < 1:
            reasons.append(f"L1 requirement {l1:.0f} < 1")
        elif l1 > self.hw.l1_size:
            reasons.append(f"L1 requirement {l1:.0f} > L1 size {self.hw.l1_size}")
        if l2 < 1:
            reasons.append(f"L2 requirement {l2:.0f} < 1")
        elif l2 > self.hw.l2_size:
            reasons.append(f"L2 requirement {l2:.0f} > L2 size {self.hw.l2_size}")
        return reasons

    @property
    def valid(self) -> np.ndarray:
        """Vectorized :meth:`invalid_reasons` == [] and not rejected."""
        rt, l1, l2 = self.runtime, self.l1_size_req, self.l2_size_req
        return ((~self.rejected) & (rt >= 1) & (l1 >= 1) & (l1 <= self.hw.l1_size)
                & (l2 >= 1) & (l2 <= self.hw.l2_size))

    def area_power(self) -> dict[str, np.ndarray]:
        """MAESTRO's area (um^2) and power (mW) of every mapping, with L1 and L2 sized to its
        requirements (:func:`gamma.costmodel.area_power.area_power`; NaN requirements as 0)."""
        return area_power(self.hw.num_pes, self.hw.noc_bw, self.hw.num_simd_lanes,
                          np.nan_to_num(self.l1_size_req), np.nan_to_num(self.l2_size_req))

    def verdict(self, b: int) -> tuple[str, str]:
        """("valid" | "invalid" | "rejected", reason)."""
        if self.error[b] != K.E_OK:
            return REJECTED, REJECT_REASONS.get(int(self.error[b]), f"error {self.error[b]}")
        reasons = self.invalid_reasons(b)
        return (OK_INVALID, "; ".join(reasons)) if reasons else (OK_VALID, "")

    def outputs(self, b: int) -> dict[str, float]:
        """MAESTRO's CSV row for mapping ``b`` under the reference file's key names."""
        r = self.raw[b]
        hw = self.hw
        rt, macs, energy = r[K.O_RUNTIME], r[K.O_MACS], r[K.O_ENERGY]
        ap = area_power(hw.num_pes, hw.noc_bw, hw.num_simd_lanes, r[K.O_L1_REQ:K.O_L1_REQ + 1],
                        r[K.O_L2_REQ:K.O_L2_REQ + 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            out: dict[str, float] = {
                "num_pes": hw.num_pes,
                "runtime_cycles": rt,
                "energy_nJ": energy,
                "throughput_macs_per_cycle": np.float64(macs) / rt,
                "throughput_per_energy": np.float64(macs) / rt / energy * 1e9,
                "area": float(ap["area"][0]),
                "power": float(ap["power"][0]),
                "noc_bw_req": r[K.O_PEAK_BW],
                "avg_bw_req": r[K.O_AVG_BW],
                "peak_bw_req": r[K.O_PEAK_BW],
                "vector_width": hw.num_simd_lanes,
                "offchip_bw_req": r[K.O_OFFCHIP_BW],
                "l2_size_req": r[K.O_L2_REQ],
                "l1_size_req": r[K.O_L1_REQ],
                "num_input_elems": _tensor_size(self.layer, 0),
                "num_weight_elems": _tensor_size(self.layer, 1),
                "ops_per_joule": np.float64(macs) / energy * 1e9,
                "num_macs": macs,
                "pe_power": float(ap["pe_power"][0]),
                "l1_power": float(ap["l1_power"][0]),
                "l2_power": float(ap["l2_power"][0]),
                "noc_power": float(ap["noc_power"][0]),
                "avg_utilized_pes": r[K.O_AVG_PES],
                "arithmetic_intensity": r[K.O_ARITH_INT],
            }
            for name, t in _TENSOR_KEYS.items():
                l1r, l1w, l2r, l2w = (r[K.O_IN_L1R + 4 * t + i] for i in range(4))
                out[f"{name}_l1_read"], out[f"{name}_l1_write"] = l1r, l1w
                out[f"{name}_l2_read"], out[f"{name}_l2_write"] = l2r, l2w
                out[f"{name}_reuse_factor"] = np.float64(l1r) / l1w
            out["multicast_factor_weight"] = out["filter_l1_write"] / out["filter_l2_read"]
            out["multicast_factor_input"] = out["input_l1_write"] / out["input_l2_read"]
            for i, name in enumerate(("ingress_delay", "egress_delay", "compute_delay")):
                out[f"{name}_min"] = r[K.O_IN_DMIN + 3 * i]
                out[f"{name}_max"] = r[K.O_IN_DMIN + 3 * i + 1]
                out[f"{name}_avg"] = r[K.O_IN_DMIN + 3 * i + 2]
        return {k: float(v) for k, v in out.items()}


def _tensor_size(layer: Layer, t: int) -> int:
    """Product of the layer dims coupled to tensor t (0 input, 1 weight), input-centric."""
    if layer.type == "GEMM":
        return layer.M * layer.K if t == 0 else layer.K * layer.N
    if t == 0:
        return layer.C * layer.Y * layer.X
    return (layer.K if layer.type == "CONV" else 1) * layer.C * layer.R * layer.S


def evaluate(layer: Layer, hw: Hardware,
             mappings: Sequence[Mapping] | MappingBatch | PackedMappings) -> CostResult:
    """Evaluate every mapping of the batch on ``layer`` and ``hw`` in one kernel call."""
    if isinstance(mappings, PackedMappings):
        packed = mappings
    else:
        packed = pack_batch(mappings) if isinstance(mappings, MappingBatch) else pack(mappings)
    ltype, ldims = layer_arrays(layer)
    B = len(packed)
    raw = np.zeros((B, K.NOUT), np.float64)
    err = np.zeros(B, np.int64)
    hwv = np.array([hw.num_pes, hw.noc_bw, hw.offchip_bw, hw.noc_hops * hw.noc_hop_latency,
                    hw.num_simd_lanes], np.int64)
    K.evaluate_packed(ltype, ldims, layer.stride_y, layer.stride_x, hwv, packed.nlev,
                      packed.cluster, packed.nd, packed.dvar, packed.dsp, packed.dsz, packed.dofs,
                      raw, err)
    err[overflow_rows(packed, ltype, ldims)] = E_OVERFLOW
    raw[err != K.E_OK] = np.nan
    return CostResult(layer, hw, raw, err)
