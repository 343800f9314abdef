"""Forecast windows: which init times belong to a split, and where their fields sit in a store.

An init time t0 belongs to a split when all its targets (t0+6h .. t0+24h) lie in the split's
days and all its inputs (t0-66h .. t0) exist; inputs may reach back into the previous split.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bench.task import SplitSpec, TaskSpec


@dataclasses.dataclass(frozen=True)
class WindowPositions:
    """Store positions of each window's input and target fields, shape (windows, steps)."""

    init_times: pd.DatetimeIndex
    inputs: np.ndarray
    targets: np.ndarray


def split_init_times(task: TaskSpec, times: pd.DatetimeIndex, split: SplitSpec) -> pd.DatetimeIndex:
    """Init times of ``split`` whose inputs and targets are all present in ``times``."""
    candidates = times[(times >= split.first_time - task.time_step * task.output_steps) & (times <= split.last_time)]
    first_target = candidates + task.target_offsets()[0]
    last_target = candidates + task.target_offsets()[-1]
    in_split = (first_target >= split.first_time) & (last_target <= split.last_time)
    candidates = candidates[in_split]
    positions = window_positions(task, times, candidates, strict=False)
    complete = (positions.inputs >= 0).all(axis=1) & (positions.targets >= 0).all(axis=1)
    return candidates[complete]


def window_positions(
    task: TaskSpec, times: pd.DatetimeIndex, init_times: pd.DatetimeIndex, strict: bool = True
) -> WindowPositions:
    """Positions in ``times`` of every window's inputs and targets (-1 where absent unless strict)."""
    init = pd.DatetimeIndex(init_times)
    want_inputs = init.values[:, None] + task.input_offsets()[None, :].astype("timedelta64[ns]")
    want_targets = init.values[:, None] + task.target_offsets()[None, :].astype("timedelta64[ns]")
    inputs = times.get_indexer(want_inputs.ravel()).reshape(want_inputs.shape)
    targets = times.get_indexer(want_targets.ravel()).reshape(want_targets.shape)
    if strict and ((inputs < 0).any() or (targets < 0).any()):
        raise KeyError("some window fields are missing from the store")
    return WindowPositions(init, inputs, targets)
