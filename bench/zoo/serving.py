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
        """(B, 4, C, H, W); an ensemble model (latent diffusion) answers (B, M, 4, C, H, W), seeded per init time."""
        if getattr(self.model, "probabilistic", False):
            return self.model.sample_physical(np.asarray(inputs, dtype=np.float32), batch.init_times)
        return self.model.predict_physical(np.asarray(inputs, dtype=np.float32), batch.input_times)

    def num_parameters(self) -> int:
        """The network's parameters; a latent forecaster counts its codec too (it runs it)."""
        return int(sum(p.numel() for p in self.model.parameters() if p.is_floating_point()))


def build_zoo_forecaster(context: SubmissionContext) -> ZooForecaster:
    """The entry point every zoo baseline's ``model.py`` calls."""
    return ZooForecaster(context)


class ZooCodec:
    """A trained codec in eval mode behind the harness's codec contract: physical numpy fields in and out."""

    def __init__(self, context: SubmissionContext):
        from bench.zoo.checkpoint import load_codec

        self.model = load_codec(weights_dir(context.submission_dir, context.task.name), context.task)
        self.latent_shape: tuple[int, ...] = tuple(int(v) for v in self.model.latent_shape)

    def encode(self, fields: np.ndarray) -> np.ndarray:
        """Physical fields (B, C, 32, 64) -> latents (B, *latent_shape) float32 (posterior mode)."""
        return self.model.encode_physical(np.asarray(fields, dtype=np.float32))

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Latents (B, *latent_shape) -> physical fields (B, C, 32, 64) float32."""
        return self.model.decode_physical(np.asarray(latents, dtype=np.float32))

    def describe(self) -> dict:
        return self.model.describe()

    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.net.parameters()))


def build_zoo_codec(context: SubmissionContext) -> ZooCodec:
    """The entry point every zoo codec baseline's ``model.py`` calls (``build_codec``)."""
    return ZooCodec(context)
