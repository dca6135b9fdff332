"""Durations as flow authors write them: `500ms`, `5s`, `2m`, `1m30s`, `1h`, or seconds.

Units are limited to ms, s, m and h so that a typo such as `5x` or `5 sec` is an error
rather than a guess. Values are seconds as floats, which is what the call layer's timers
take.
"""

import math
import re
from typing import Any

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_WHOLE = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Longer than any IVR timer should ever be; it also keeps floats exact enough.
MAX_DURATION = 24 * 3600.0
_HINT = "write seconds or a number with a unit: 500ms, 5s, 2m, 1m30s, 1h"


def parse_duration(value: Any) -> float:
    """Seconds for `value`; raises ValueError with a message fit for a flow author."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: {_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 40 and _WHOLE.match(value.strip()):
        text = value.strip()
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError(f"bad duration {value!r}: {_HINT}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"bad duration {value!r}: it must be zero or more")
    if seconds > MAX_DURATION:
        raise ValueError(f"bad duration {value!r}: longer than {format_duration(MAX_DURATION)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest readable form: 0.5 -> '500ms', 90 -> '1m30s', 5 -> '5s'."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    if abs(seconds - whole) > 1e-9:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if secs or not parts:
        parts.append(f"{secs}s")
    return "".join(parts)
