"""Error maps as PNG: a submission's RMSE per grid cell, latitude up, on a colour scale shared by its board."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.leaderboard.display import channel_label, lead_label, units_label

COLOUR_MAP = "magma_r"


@dataclasses.dataclass(frozen=True)
class ErrorMap:
    """One channel's RMSE field at one lead, latitude ascending, longitude from 0 east."""

    channel: str
    lead_hours: float
    units: str
    rmse: np.ndarray


def read_error_map(channel: str, raw: dict[str, Any]) -> ErrorMap | None:
    """The error map of a results file's ``error_maps[channel]``, or None if it is not a 2-D grid of numbers."""
    try:
        rmse = np.asarray(raw.get("rmse"), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if rmse.ndim != 2 or min(rmse.shape) < 2 or not np.isfinite(rmse).any():
        return None
    lead = raw.get("lead_hours")
    return ErrorMap(channel, lead if isinstance(lead, (int, float)) else float("nan"), str(raw.get("units", "")), rmse)


def shared_scale(maps: list[ErrorMap]) -> float:
    """An upper colour limit for maps of one channel: the largest 99th percentile among them."""
    tops = [float(np.nanpercentile(m.rmse, 99)) for m in maps]
    top = max(tops, default=1.0)
    return top if top > 0 else 1.0


def plain_text(text: str) -> str:
    """Text for a matplotlib label with ``$`` escaped, so submission text is never parsed as maths."""
    return text.replace("$", r"\$")


class ErrorMapCanvas:
    """One figure per board and channel: every entry's map is drawn into it on the same colour scale.

    Reusing the figure (only the image and title change) makes a map about four times faster to write.
    """

    def __init__(self, shape: tuple[int, int], units: str, vmax: float, clipped: bool):
        self.figure = Figure(figsize=(6.4, 3.6), dpi=110)
        FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(left=0.09, right=0.88, bottom=0.14, top=0.91)
        self.axes = self.figure.add_subplot()
        n_lat, n_lon = shape
        lon_step = 360.0 / n_lon
        self.image = self.axes.imshow(
            np.zeros(shape), origin="lower", extent=(-lon_step / 2, 360 - lon_step / 2, -90, 90),
            cmap=COLOUR_MAP, vmin=0.0, vmax=vmax, interpolation="nearest", aspect="auto",
        )
        self.axes.set_xlim(-lon_step / 2, 360 - lon_step / 2)
        self.axes.set_xticks(range(0, 360, 60))
        self.axes.set_yticks(range(-90, 91, 30))
        self.axes.set_xlabel("longitude (°E)", fontsize=9)
        self.axes.set_ylabel("latitude (°N)", fontsize=9)
        self.axes.tick_params(labelsize=8)
        colour_axes = self.figure.add_axes((0.9, 0.14, 0.02, 0.77))
        colour_bar = self.figure.colorbar(self.image, cax=colour_axes, extend="max" if clipped else "neither")
        colour_bar.set_label(plain_text(units_label(units)), fontsize=9)
        colour_bar.ax.tick_params(labelsize=8)

    def draw(self, error_map: ErrorMap, png: Path) -> None:
        """Write ``error_map`` to ``png`` (values above the scale show in the darkest colour)."""
        self.image.set_data(error_map.rmse)
        lead = lead_label(error_map.lead_hours) if np.isfinite(error_map.lead_hours) else "?"
        # Codec results record lead 0: a reconstruction, not a forecast.
        title = f"{channel_label(error_map.channel)} · " + (f"RMSE at +{lead}" if error_map.lead_hours != 0 else "reconstruction RMSE")
        self.axes.set_title(plain_text(title), fontsize=10, loc="left")
        png.parent.mkdir(parents=True, exist_ok=True)
        self.figure.savefig(png, metadata={"Software": None})


def render_error_maps(maps: list[tuple[ErrorMap, Path]], vmax: float) -> None:
    """Draw maps of one channel to their PNGs on a shared 0..vmax scale, reusing a figure per grid shape."""
    clipped = any(float(np.nanmax(error_map.rmse)) > vmax for error_map, _ in maps)
    canvases: dict[tuple[int, int], ErrorMapCanvas] = {}
    for error_map, png in maps:
        shape = error_map.rmse.shape
        if shape not in canvases:
            canvases[shape] = ErrorMapCanvas(shape, error_map.units, vmax, clipped)
        canvases[shape].draw(error_map, png)
