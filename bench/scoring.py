"""Streaming scoring: accumulate per-init-time metric values batch by batch, then aggregate."""
from __future__ import annotations

import numpy as np
import xarray as xr

from bench.metrics import ENSEMBLE_DIM, TIME_DIM, lat_weights, metrics_for
from bench.normalization import NormStats
from bench.results import json_number
from bench.task import TaskSpec

SPACES = ("physical", "normalized")


class ScoreAccumulator:
    """Collects every metric in physical and z-score space, plus squared-error maps."""

    def __init__(self, task: TaskSpec, stats: NormStats, ensemble: bool):
        self.task = task
        self.stats = stats
        self.ensemble = ensemble
        self.metrics = metrics_for(ensemble)
        self.weights = lat_weights(task.grid.latitude.values)
        self.per_time: dict[tuple[str, str], list[xr.DataArray]] = {(s, m.name): [] for s in SPACES for m in self.metrics}
        self.squared_error_sum = np.zeros((task.output_steps, len(task.channels)) + task.grid.shape)
        self.count = 0

    def _wrap(self, array: np.ndarray, init_times: np.ndarray, ensemble: bool = False) -> xr.DataArray:
        dims = [TIME_DIM] + ([ENSEMBLE_DIM] if ensemble else []) + ["lead_hours", "channel", "latitude", "longitude"]
        coords = {
            TIME_DIM: init_times, "lead_hours": self.task.lead_hours, "channel": self.task.channel_keys,
            "latitude": self.task.grid.latitude.values, "longitude": self.task.grid.longitude.values,
        }
        return xr.DataArray(array.astype(np.float64), dims=dims, coords=coords)

    def add(self, init_times: np.ndarray, forecast: np.ndarray, truth: np.ndarray, climatology: np.ndarray) -> None:
        """Score one batch: forecast (B,[M,]4,C,H,W), truth and climatology (B,4,C,H,W)."""
        arrays = {"physical": (forecast, truth, climatology)}
        arrays["normalized"] = tuple(self.stats.zscore(a.astype(np.float64), channel_axis=-3) for a in arrays["physical"])
        for space, (f, t, c) in arrays.items():
            fc = self._wrap(f, init_times, self.ensemble)
            tr, cl = self._wrap(t, init_times), self._wrap(c, init_times)
            for metric in self.metrics:
                self.per_time[(space, metric.name)].append(metric.compute_chunk(fc, tr, self.weights, cl))
        mean_forecast = forecast.mean(axis=1) if self.ensemble else forecast
        self.squared_error_sum += ((mean_forecast.astype(np.float64) - truth) ** 2).sum(axis=0)
        self.count += len(init_times)

    def metric_table(self) -> dict[str, dict[str, dict[str, list[float | None]]]]:
        """metrics[channel][space][metric] = value per lead, each time-aggregated once."""
        table: dict = {c: {s: {} for s in SPACES} for c in self.task.channel_keys}
        for (space, name), chunks in self.per_time.items():
            metric = next(m for m in self.metrics if m.name == name)
            value = metric.aggregate(xr.concat(chunks, dim=TIME_DIM))
            for channel in self.task.channel_keys:
                row = value.sel(channel=channel).transpose("lead_hours").values
                table[channel][space][name] = [json_number(v) for v in row]
        return table

    def error_maps(self) -> dict[str, dict]:
        """Time-mean RMSE per grid point at the longest lead, physical units."""
        rmse = np.sqrt(self.squared_error_sum[-1] / max(self.count, 1))
        return {
            c.key: {
                "lead_hours": self.task.lead_hours[-1], "units": c.units,
                "rmse": [[json_number(v, 4) for v in row] for row in rmse[i]],
            }
            for i, c in enumerate(self.task.channels)
        }
