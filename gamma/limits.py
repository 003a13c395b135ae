"""What the cost model can compute, and strict integers from text: the one place that says which
numbers gamma accepts (layer dimensions, directive sizes and offsets, dataflow size rules,
hardware values) and why.

The MAESTRO kernel (:mod:`gamma.costmodel.kernel`) counts in int64, which wraps silently on
overflow. Its largest counts (MACs, per-tensor traffic, cycles) are sums of products of the tile
sizes over a layer's dimensions; for a layer (or a mapping whose tiles exceed the layer) the
product of the dimensions bounds each of them, and the kernel adds up to a few such counts. So:

* a single size (a dimension, a tile, an offset, a Cluster) is at most :data:`MAX_SIZE`
  (2^31 - 1 elements);
* the product of a layer's dimensions (K*C*R*S*Y*X, input-centric Y and X; GEMM M*N*K) is at
  most :data:`MAX_PRODUCT` (2^59, the int64 range over 16), and so is that product with each
  dimension replaced by the largest tile a mapping puts on it.

Units: elements (sizes), PEs, elements per cycle.
"""

from __future__ import annotations

import re

#: Largest size of one dimension, tile, offset or cluster (elements): 2^31 - 1.
MAX_SIZE = (1 << 31) - 1
#: Largest product of a layer's dimensions (elements): the int64 range (2^63) over 16, so that
#: the kernel's sums of such products (MACs, traffic, cycles) cannot wrap.
MAX_PRODUCT = 1 << 59
#: Largest hardware value (PEs, elements, elements/cycle): 2^62, within the kernel's int64.
MAX_HARDWARE = 1 << 62

_DIGITS = re.compile(r"[0-9]+")


def parse_int(text: str) -> int:
    """The integer written as ``text``: ASCII digits only, optionally after a ``+`` or ``-``
    and surrounded by blanks. A ``ValueError`` for anything else: ``1_0`` (Python's ``int``
    would read 10), ``10.0``, ``1e3``, ``0x10``, an empty cell, other digits than 0-9."""
    s = str(text).strip()
    body = s[1:] if s[:1] in "+-" else s
    if not _DIGITS.fullmatch(body):
        raise ValueError(f"{s!r} is not an integer (digits 0-9 only)")
    return int(s)


def product_limit_reason(product: int, formula: str) -> str | None:
    """Why a product of dimensions ``formula`` = ``product`` is beyond the cost model (None if it
    is not)."""
    if product <= MAX_PRODUCT:
        return None
    return (f"{formula} = {product:,} exceeds {MAX_PRODUCT:,} (2^59), the largest product of "
            f"dimensions the cost model can count without overflowing its int64 arithmetic")


def size_limit_reason(value: int, what: str) -> str | None:
    """Why one size ``what`` = ``value`` is beyond the cost model (None if it is not)."""
    if value <= MAX_SIZE:
        return None
    return (f"{what} = {value:,} is too large for the cost model (at most {MAX_SIZE:,}, "
            f"2^31 - 1, so that its int64 products cannot overflow)")
