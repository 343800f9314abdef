"""Climatological ensemble: train-year fields at the valid time's calendar day and hour (numpy only)."""
from __future__ import annotations

import numpy as np

from bench.submission import Batch, SubmissionContext

OFFSET_DAYS = (-4, -2, 0, 2, 4)  # x 4 train years = 20 members


class ClimatologyEnsemble:
    """Members are past states of the same season: the spread is the climate's, not the forecast's."""

    def __init__(self, context: SubmissionContext):
        self.train = context.train_fields()
        split = context.task.splits["train"]
        self.years = tuple(range(split.first_time.year, split.last_time.year + 1))  # the task's, whatever the store has

    def predict(self, inputs: np.ndarray, batch: Batch) -> np.ndarray:
        """(B, M, 4, C, H, W): member m at lead l is the train field at the m-th same-season time of valid time l."""
        member_times = self.train.same_season(batch.valid_times, OFFSET_DAYS, years=self.years)  # (B, 4, M)
        return np.moveaxis(self.train.at(member_times), 2, 1).astype(np.float32)


def build_model(context: SubmissionContext) -> ClimatologyEnsemble:
    return ClimatologyEnsemble(context)
