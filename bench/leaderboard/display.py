"""How the site words things: labels for tracks, channels and metrics, and how numbers are written."""
from __future__ import annotations

import math
import re

DASH = "—"

TRACK_LABELS: dict[str, str] = {
    "deterministic": "Deterministic forecast",
    "probabilistic": "Probabilistic",
    "codec": "Codec reconstruction",
}
TRACK_ORDER = tuple(TRACK_LABELS)

METRIC_LABELS: dict[str, str] = {
    "rmse": "RMSE",
    "mae": "MAE",
    "bias": "Bias",
    "acc": "ACC",
    "crps": "CRPS",
    "spread": "Spread",
    "spread_skill": "Spread/skill",
}
METRIC_ORDER = tuple(METRIC_LABELS)


def track_label(track: str) -> str:
    """The tab title of a track; unknown tracks keep their own name."""
    return TRACK_LABELS.get(track, track)


def channel_label(channel_key: str) -> str:
    """A channel key as prose: ``10m_u_component_of_wind`` -> ``10m u component of wind``."""
    return channel_key.replace("_", " ")


def metric_label(metric: str) -> str:
    """A metric's short name as readers know it (RMSE, ACC, ...)."""
    return METRIC_LABELS.get(metric, metric)


def units_label(units: str) -> str:
    """CF-style units (``m**2 s**-2``) written with superscripts (``m² s⁻²``)."""
    superscripts = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    return re.sub(r"\*\*(-?\d+)", lambda match: match.group(1).translate(superscripts), units)


def metric_units(metric: str, channel_units: str, space: str) -> str:
    """Units of a metric's values: none for ACC, σ for normalized values, else the channel's units."""
    if metric in ("acc", "spread_skill"):
        return ""
    if space == "normalized":
        return "σ units"
    return units_label(channel_units)


def lead_label(hours: float) -> str:
    """A lead time as a column heading: ``24 h``."""
    return f"{hours:g} h"


def is_number(value: object) -> bool:
    """True for a finite int or float (bools and NaN are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def column_decimals(values: list[float | None], significant: int = 4) -> int:
    """Decimals that give the largest value of a column ``significant`` digits, so a column aligns."""
    magnitudes = [abs(v) for v in values if is_number(v) and v != 0]
    if not magnitudes:
        return 2
    leading = math.floor(math.log10(max(magnitudes)))
    return min(max(significant - 1 - leading, 0), 4)


def format_number(value: float | None, decimals: int) -> str:
    """A value with fixed decimals; a missing value is a dash."""
    if not is_number(value):
        return DASH
    return f"{value:.{decimals}f}"


def format_skill(value: float | None) -> str:
    """A skill score (1 - RMSE/RMSE_ref) as a signed percentage."""
    if not is_number(value):
        return DASH
    return f"{100 * value:+.1f}"


def format_parameters(count: object) -> str:
    """A parameter count the way papers write it: 12.3M, 845k, 97."""
    if not is_number(count):
        return DASH
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= scale:
            return f"{count / scale:.3g}{suffix}"
    return f"{count:g}"


def format_count(count: object) -> str:
    """A count with thousands separators: 1,464."""
    return f"{count:,}" if is_number(count) else (DASH if count is None else str(count))


def format_duration(seconds: object) -> str:
    """A wall time as ``1 h 02 min``, ``3 min 05 s`` or ``12.3 s``."""
    if not is_number(seconds):
        return DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def slugify(text: str, fallback: str = "item") -> str:
    """A lowercase file-name-safe form of ``text`` (letters, digits, ``-``, ``_``, ``.``), never empty."""
    slug = re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-.")
    return slug[:80] or fallback


def safe_link(url: object) -> str | None:
    """``url`` if it is an http(s) address, else None: submission text never becomes a script link."""
    if isinstance(url, str) and re.match(r"^https?://[^\s]+$", url.strip(), flags=re.IGNORECASE):
        return url.strip()
    return None
