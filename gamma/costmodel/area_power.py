"""MAESTRO's built-in area and power model (DSE_hardware_modules / cost database), vectorized.

Area in MAESTRO's units (um^2), power in mW. L1 is the per-PE L1 *requirement* and L2 the L2
*requirement* (elements), as MAESTRO reports them; the NoC is a bus plus a matrix arbiter.
"""

from __future__ import annotations

import numpy as np

MAC_AREA = 283.0
MAC_POWER = 1.2223
SRAM_AREA_PER_ELEM = 0.104
SRAM_POWER_PER_ELEM = 0.00345
BUS_AREA = 101.7938
BUS_POWER = 0.8
ARBITER_AREA = 395.473
ARBITER_POWER = 0.34


def _bus_units(num_pes: int) -> float:
    return 14.662 * num_pes + 28.895


def _arbiter_units(num_pes: int) -> float:
    return 1.2886 * num_pes**2 + 5.5814 * num_pes - 23.711


def area_power(num_pes: int, noc_bw: int, vector_width: int, l1_req: np.ndarray,
               l2_req: np.ndarray) -> dict[str, np.ndarray]:
    """Area and power terms for each mapping, given its L1/L2 requirements (elements)."""
    l1 = np.ceil(l1_req)
    bus, arb = _bus_units(num_pes), _arbiter_units(num_pes)
    noc_area = BUS_AREA * bus * noc_bw + max(ARBITER_AREA, ARBITER_AREA * arb)
    noc_power = BUS_POWER * bus / 1000.0 * noc_bw + max(ARBITER_POWER, ARBITER_POWER * arb / 1000.0)
    pe_power = num_pes * MAC_POWER * vector_width
    l1_power = num_pes * SRAM_POWER_PER_ELEM * l1
    l2_power = SRAM_POWER_PER_ELEM * l2_req
    area = num_pes * (MAC_AREA * vector_width + SRAM_AREA_PER_ELEM * l1) + SRAM_AREA_PER_ELEM * l2_req + noc_area
    ones = np.ones_like(l1, dtype=float)
    return {
        "area": area,
        "power": pe_power + l1_power + l2_power + noc_power,
        "pe_power": pe_power * ones,
        "l1_power": l1_power,
        "l2_power": l2_power,
        "noc_power": noc_power * ones,
    }
