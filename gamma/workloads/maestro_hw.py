"""MAESTRO hardware files (``--HW_file``): the tokens ``num_pes``, ``l1_size_cstr``,
``l2_size_cstr``, ``noc_bw_cstr``, ``offchip_bw_cstr`` and ``NoC_NumHops``, one ``name: value``
per line. Sizes in elements, bandwidths in elements/cycle. A co-designed hardware is written as
such a file next to its mapping files (docs/codesign.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gamma.errors import GammaError
from gamma.hardware import Hardware

#: MAESTRO's token for each Hardware field a hardware file carries.
HW_TOKENS = {"num_pes": "num_pes", "l1_size_cstr": "l1_size", "l2_size_cstr": "l2_size",
             "noc_bw_cstr": "noc_bw", "offchip_bw_cstr": "offchip_bw", "NoC_NumHops": "noc_hops"}


def format_hardware_file(hw: Hardware) -> str:
    """``hw`` as a MAESTRO hardware file."""
    return "".join(f"{token}: {getattr(hw, field)}\n" for token, field in HW_TOKENS.items())


def parse_hardware_file(text: str, source: str = "<string>", base: Hardware | None = None) -> Hardware:
    """The :class:`Hardware` of a MAESTRO hardware file; fields it does not give come from
    ``base`` (required when it lacks one of num_pes, l1/l2 size, NoC and off-chip bandwidth). A
    malformed line is a :class:`GammaError` naming ``source`` and the line."""
    values: dict[str, Any] = dict(base.to_dict()) if base is not None else {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("//", 1)[0].strip()
        if not line:
            continue
        token, sep, value = (part.strip() for part in line.partition(":"))
        if not sep or token not in HW_TOKENS or not value.isdigit():
            raise GammaError(f"{source}:{n}: expected '<token>: <integer>' with a token of "
                             f"{', '.join(HW_TOKENS)}, got {line!r}")
        values[HW_TOKENS[token]] = int(value)
    try:
        return Hardware.from_dict(values)
    except GammaError as e:
        raise GammaError(f"{source}: {e}") from None


def read_hardware_file(path: str | os.PathLike[str], base: Hardware | None = None) -> Hardware:
    """:func:`parse_hardware_file` of the file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GammaError(f"{path}: cannot read: {e}") from None
    return parse_hardware_file(text, str(path), base)
