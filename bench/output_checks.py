"""Checks on every forecast a submission hands over: shape, dtype, finite values, units."""
from __future__ import annotations

import numpy as np

from bench.errors import NonFiniteOutputError, OutputDtypeError, OutputShapeError, OutputUnitsError
from bench.task import TaskSpec


def expected_shape(task: TaskSpec, batch: int, members: int | None = None) -> tuple[int, ...]:
    """(batch, [members,] output_steps, channels, lat, lon)."""
    tail = (task.output_steps, len(task.channels)) + task.grid.shape
    return (batch,) + ((members,) if members is not None else ()) + tail


def check_forecast(forecast: object, task: TaskSpec, batch: int, ensemble: bool, source: str) -> np.ndarray:
    """Return ``forecast`` as float32 after every check, or raise a named error with the fix."""
    array = np.asarray(forecast)
    members = array.shape[1] if ensemble and array.ndim == 6 else None
    want = expected_shape(task, batch, members if ensemble else None)
    if array.shape != want:
        layout = "(batch, members, 4, channel, 32, 64)" if ensemble else "(batch, 4, channel, 32, 64)"
        raise OutputShapeError(f"{source}: forecast has shape {array.shape}, expected {want} i.e. {layout}")
    if not np.issubdtype(array.dtype, np.floating) or array.dtype.itemsize < 4:
        raise OutputDtypeError(f"{source}: forecast dtype is {array.dtype}; return float32 (or float64)")
    finite = np.isfinite(array)
    if not finite.all():
        bad = int((~finite).sum())
        raise NonFiniteOutputError(f"{source}: forecast has {bad} NaN/inf values of {array.size}; every value must be finite")
    channel_axis = array.ndim - 3
    for index, channel in enumerate(task.channels):
        values = np.take(array, index, axis=channel_axis)
        lo, hi = channel.plausible_range
        vmin, vmax = float(values.min()), float(values.max())
        if vmin < lo or vmax > hi:
            hint = ""
            if channel.units == "K" and -100 < float(values.mean()) < 60:
                hint = " — it looks like degrees Celsius: add 273.15 to get kelvin"
            elif channel.name == "geopotential" and vmax < hi / 9.80665 * 1.5:
                hint = " — it looks like geopotential height in m: multiply by 9.80665 to get m**2 s**-2"
            raise OutputUnitsError(
                f"{source}: {channel.key} spans {vmin:.4g}..{vmax:.4g}, outside its plausible range "
                f"{lo:g}..{hi:g} {channel.units}{hint}"
            )
    # Scored as float32 whatever came in, so code and predictions-file paths score identical numbers.
    return array.astype(np.float32, copy=False)
