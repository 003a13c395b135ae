"""Checks of optimizer settings: a bad value raises :class:`SettingError`, which names the
setting as the user writes it on the command line (``optimizer.<field>``) and says why."""

from __future__ import annotations

import numbers
from typing import Any

from gamma.errors import GammaError


class SettingError(GammaError, ValueError):
    """An optimizer setting that makes no sense; ``field`` is its key below ``optimizer.``."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"optimizer.{field} = {value!r}: {reason}")


def check_int(field: str, value: Any, minimum: int) -> int:
    """``value`` as an int, if it is an integer >= ``minimum`` (bools are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SettingError(field, value, "must be an integer")
    if value < minimum:
        raise SettingError(field, value, f"must be at least {minimum}")
    return int(value)


def check_real(field: str, value: Any, low: float | None = None, high: float | None = None,
               low_open: bool = False) -> float:
    """``value`` as a float, if it is a real number in [low, high] (``(low, high]`` with
    ``low_open``); a missing bound is not checked."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise SettingError(field, value, "must be a number")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        if high is None:
            raise SettingError(field, value, f"must be {'above' if low_open else 'at least'} {low:g}")
        if low is None:
            raise SettingError(field, value, f"must be at most {high:g}")
        raise SettingError(field, value, f"must be in {'(' if low_open else '['}{low:g}, {high:g}]")
    return float(value)


def check_rate(field: str, value: Any) -> float:
    """A probability: a real number in [0, 1]."""
    return check_real(field, value, 0.0, 1.0)


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError(field, value, "must be true or false")
    return value


def check_choice(field: str, value: Any, choices: list[str] | tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingError(field, value, f"choose from {', '.join(choices)}")
    return str(value)


def check_keys(field: str, given: dict[str, Any], known: list[str] | tuple[str, ...]) -> None:
    """Refuse keys of ``given`` (the settings below ``optimizer.<field>``) that are not known."""
    unknown = [k for k in given if k not in known]
    if unknown:
        where = f"{field}.{unknown[0]}" if field else str(unknown[0])
        raise SettingError(where, given[unknown[0]], f"unknown setting; known: {', '.join(known)}")


def platform_start(operators: dict[str, Any]) -> float:
    """``codesign.operators.platform_start``: the share of the budget spent on the start design
    (0 when absent); a :class:`GammaError` unless a number in [0, 1]."""
    v = operators.get("platform_start", 0.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise GammaError(f"codesign.operators.platform_start = {v!r}: must be a number in [0, 1]")
    return float(v)
