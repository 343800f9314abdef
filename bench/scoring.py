"""Streaming scoring: per-init-time metric values batch by batch (one pass per batch), then aggregate.

Each batch is read once: its float64 arrays and shared intermediates (``bench.metrics.Chunk``)
feed every metric's numpy kernel; normalised-space values follow from the physical ones and the
train-split std (``Metric.zscore_power``). Per-time values are kept per batch, so partial scores of
consecutive init-time chunks (scored on different dask workers) merge into exactly the numbers one
process gets: the time-mean is taken once over the concatenation, in init-time order.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from bench.metrics import TIME_DIM, Chunk, RankHistogram, lat_weights, metrics_for, spatial_mean_vector, spread_skill_correction
from bench.normalization import NormStats
from bench.results import json_number
from bench.task import TaskSpec

SPACES = ("physical", "normalized")


@dataclasses.dataclass
class ScoreState:
    """What an accumulator has gathered; picklable, and mergeable in init-time order."""

    per_time: dict[tuple[str, str], list[np.ndarray]]  # (space, metric) -> per-batch (B, lead, channel)
    squared_error_sums: list[np.ndarray]  # per batch: sum over its inits of (lead, channel, lat, lon)
    count: int
    rank_histogram: RankHistogram | None = None  # ensembles: truth ranks among the members, summed over chunks


def time_mean(chunks: list[np.ndarray]) -> np.ndarray:
    """Mean over init times of per-batch values; init times with an undefined value (NaN) are skipped, as xarray does."""
    values = np.concatenate(chunks)
    if not np.isnan(values).any():
        return values.mean(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: ACC of the climatology itself is undefined
        return np.nanmean(values, axis=0)


class ScoreAccumulator:
    """Collects every metric in physical and z-score space, plus squared-error maps."""

    def __init__(self, task: TaskSpec, stats: NormStats, ensemble: bool):
        self.task = task
        self.stats = stats
        self.ensemble = ensemble
        self.metrics = metrics_for(ensemble)
        self.weights = lat_weights(task.grid.latitude.values)
        self.mean_vector = spatial_mean_vector(self.weights.values, task.grid.shape[1])
        self.std = np.array([stats.stats[c].std for c in task.channel_keys], dtype=np.float64)
        self.state = ScoreState({(s, m.name): [] for s in SPACES for m in self.metrics}, [], 0)

    @property
    def count(self) -> int:
        return self.state.count

    @property
    def squared_error_sum(self) -> np.ndarray:
        """Sum over every scored init time of the squared error, (lead, channel, lat, lon)."""
        shape = (self.task.output_steps, len(self.task.channels)) + self.task.grid.shape
        return sum(self.state.squared_error_sums, np.zeros(shape))

    def _chunk(self, forecast: np.ndarray, truth: np.ndarray, climatology: np.ndarray) -> Chunk:
        k = truth.shape[-2] * truth.shape[-1]
        f = forecast.reshape(forecast.shape[:-2] + (k,))
        if self.ensemble:  # (B, M, lead, channel, K) -> (B, lead, channel, M, K): members next to space
            f = np.moveaxis(f, 1, -2)
        return Chunk(f, truth.reshape(truth.shape[:-2] + (k,)), climatology.reshape(truth.shape[:-2] + (k,)),
                     self.mean_vector, self.ensemble, (TIME_DIM, "lead_hours", "channel"), self.weights.values, self.task.grid.shape)

    def add(self, init_times: np.ndarray, forecast: np.ndarray, truth: np.ndarray, climatology: np.ndarray) -> None:
        """Score one batch: forecast (B,[M,]4,C,H,W), truth and climatology (B,4,C,H,W)."""
        chunk = self._chunk(forecast, truth, climatology)
        normalized_chunk = None
        for metric in self.metrics:
            values = metric.kernel(chunk)
            self.state.per_time.setdefault(("physical", metric.name), []).append(values)
            if metric.zscore_power is None:  # no algebra from the physical value: score z-scored arrays
                if normalized_chunk is None:
                    normalized_chunk = self._chunk(*(self.stats.zscore(np.asarray(a, np.float64), channel_axis=-3)
                                                     for a in (forecast, truth, climatology)))
                self.state.per_time.setdefault(("normalized", metric.name), []).append(metric.kernel(normalized_chunk))
        if self.ensemble:
            self._add_ranks(forecast, truth)
        self.state.squared_error_sums.append(chunk.squared_error.sum(axis=0).reshape(truth.shape[1:]))
        self.state.count += len(init_times)

    def merge(self, state: ScoreState) -> None:
        """Append a later chunk's state (init times after every one already added)."""
        for key, chunks in state.per_time.items():
            self.state.per_time.setdefault(key, []).extend(chunks)
        self.state.squared_error_sums.extend(state.squared_error_sums)
        self.state.count += state.count
        if state.rank_histogram is not None:
            if self.state.rank_histogram is None:
                self.state.rank_histogram = dataclasses.replace(state.rank_histogram)
                self.state.rank_histogram.counts = state.rank_histogram.counts.copy()
            else:
                self.state.rank_histogram.counts += state.rank_histogram.counts

    def metric_values(self) -> dict[tuple[str, str], np.ndarray]:
        """(space, metric) -> (lead, channel) values, each time-aggregated once."""
        values = {}
        for metric in self.metrics:
            physical = metric.finalize(time_mean(self.state.per_time[("physical", metric.name)]))
            values[("physical", metric.name)] = physical
            if metric.zscore_power is None:
                normalized = metric.finalize(time_mean(self.state.per_time[("normalized", metric.name)]))
            else:
                normalized = physical / self.std ** metric.zscore_power
            values[("normalized", metric.name)] = normalized
        return values

    @property
    def rank_histogram(self) -> RankHistogram | None:
        return self.state.rank_histogram

    def _add_ranks(self, forecast: np.ndarray, truth: np.ndarray) -> None:
        """Rank of the truth among the members, per lead and channel (physical space: z-scoring keeps ranks)."""
        if self.state.rank_histogram is None:
            self.state.rank_histogram = RankHistogram(forecast.shape[1], self.weights.values, self.task.output_steps,
                                                len(self.task.channels))
        self.rank_histogram.add(forecast, truth)

    def ensemble_summary(self) -> dict | None:
        """Ensemble size, rank-histogram frequencies per channel and lead, and how they were made; None if deterministic."""
        if self.rank_histogram is None:
            return None
        members = self.rank_histogram.members
        frequencies = self.rank_histogram.frequencies()
        return {
            "members": members,
            "spread_skill_correction": f"sqrt((M+1)/M) = {float(spread_skill_correction(members)):.6f}",
            "rank_histogram": {
                "weighting": "latitude (cell-area weights); ties between truth and members broken at random, seed 0",
                "lead_hours": list(self.task.lead_hours),
                "frequencies": {c: [[json_number(v, 6) for v in frequencies[lead, i]] for lead in range(self.task.output_steps)]
                                for i, c in enumerate(self.task.channel_keys)},
            },
        }

    def metric_table(self) -> dict[str, dict[str, dict[str, list[float | None]]]]:
        """metrics[channel][space][metric] = value per lead, each time-aggregated once."""
        table: dict = {c: {s: {} for s in SPACES} for c in self.task.channel_keys}
        for (space, name), value in self.metric_values().items():
            for i, channel in enumerate(self.task.channel_keys):
                table[channel][space][name] = [json_number(v) for v in value[:, i]]
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
