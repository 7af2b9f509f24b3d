"""Durations as users write them in YAML: ``30s``, ``5m``, ``24h``, ``7d``, ``2w``."""

from __future__ import annotations

from functools import lru_cache

__all__ = ["parse_duration"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | int | float) -> float:
    """``'90s' '5m' '24h' '7d' '2w'`` or a number of seconds -> seconds."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 24h, 7d)")
    return _parse(text)


@lru_cache(maxsize=256)
def _parse(text: str | int | float) -> float:
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"not a duration: {text!r}")
    s = text.strip().lower()
    unit = _UNITS.get(s[-1:]) if s else None
    number = s[:-1] if unit is not None else s
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 24h, 7d)") from None
    if value < 0 or value != value:
        raise ValueError(f"not a duration: {text!r}")
    return value * (unit or 1.0)
