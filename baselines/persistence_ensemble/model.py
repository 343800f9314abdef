"""Perturbed persistence: the last input plus same-season train-split tendencies (numpy only)."""
from __future__ import annotations

import numpy as np

from bench.submission import Batch, SubmissionContext

OFFSET_DAYS = (-4, -2, 0, 2, 4)  # x 4 train years = 20 members


class PersistenceEnsemble:
    """Each member adds one historical 6-24 h change to the last input: spread grows with lead like the tendencies."""

    def __init__(self, context: SubmissionContext):
        self.train = context.train_fields()
        split = context.task.splits["train"]
        self.years = tuple(range(split.first_time.year, split.last_time.year + 1))  # the task's, whatever the store has
        self.offsets = context.task.target_offsets().astype("timedelta64[ns]")  # (4,) lead times

    def predict(self, inputs: np.ndarray, batch: Batch) -> np.ndarray:
        """(B, M, 4, C, H, W) = last input + x(s_m + lead) - x(s_m)."""
        span = int(self.offsets[-1] / np.timedelta64(1, "h"))
        starts = self.train.same_season(batch.init_times, OFFSET_DAYS, span_hours=span, years=self.years)  # (B, M)
        start_fields = self.train.at(starts)  # (B, M, C, H, W)
        later = self.train.at(starts[..., None] + self.offsets)  # (B, M, 4, C, H, W)
        tendencies = later - start_fields[:, :, None]
        return (inputs[:, None, -1:] + tendencies).astype(np.float32)


def build_model(context: SubmissionContext) -> PersistenceEnsemble:
    return PersistenceEnsemble(context)
