"""Serve a trained zoo checkpoint through the submission contract (``predict(inputs, batch)``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.submission import Batch, SubmissionContext
from bench.zoo.checkpoint import load_checkpoint

WEIGHTS_DIR = "weights"


def weights_dir(submission_dir: Path, task_name: str) -> Path:
    """Where a baseline keeps the checkpoint for one task: ``weights/<task>/``."""
    return Path(submission_dir) / WEIGHTS_DIR / task_name


class ZooForecaster:
    """A checkpoint in eval mode; each call is independent (no state kept between batches)."""

    def __init__(self, context: SubmissionContext):
        self.model, self.meta = load_checkpoint(weights_dir(context.submission_dir, context.task.name), context.task)

    def predict(self, inputs: np.ndarray, batch: Batch) -> np.ndarray:
        return self.model.predict_physical(np.asarray(inputs, dtype=np.float32), batch.input_times)

    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.net.parameters()))


def build_zoo_forecaster(context: SubmissionContext) -> ZooForecaster:
    """The entry point every zoo baseline's ``model.py`` calls."""
    return ZooForecaster(context)
