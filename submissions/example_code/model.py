"""Damped anomaly persistence: climatology plus today's anomaly, shrunk toward zero with lead.

    forecast(t0 + 6h*k) = clim(t0 + 6h*k) + alpha[channel][k] * (x(t0) - clim(t0))

``clim`` is the harness's train-split climatology (``context.climatology``); ``x(t0)`` is the
latest input field. At short leads it behaves like persistence, at long leads like climatology.
The 20 damping factors were fitted once on the train split 2015-2018 by fit_damping.py; the
model learns nothing at evaluation time and uses numpy only.
"""
from __future__ import annotations

import numpy as np

from bench.submission import Batch, SubmissionContext

# alpha per lead (6, 12, 18, 24 h): least squares on the train split, see fit_damping.py.
DAMPING = {
    "2m_temperature": (0.971, 0.896, 0.794, 0.687),
    "geopotential_500": (0.978, 0.920, 0.839, 0.750),
    "temperature_850": (0.966, 0.877, 0.761, 0.641),
    "10m_u_component_of_wind": (0.960, 0.859, 0.735, 0.617),
    "10m_v_component_of_wind": (0.936, 0.776, 0.589, 0.422),
}


class DampedAnomalyPersistence:
    """Forecaster: climatology at the valid time plus the damped anomaly at t0."""

    def __init__(self, context: SubmissionContext):
        missing = [key for key in context.task.channel_keys if key not in DAMPING]
        if missing:
            raise ValueError(f"no damping factors for channels {missing}; fit them with fit_damping.py")
        self.context = context
        # (lead, channel), broadcast over (batch, lead, channel, lat, lon) in predict.
        self.alpha = np.array([DAMPING[key] for key in context.task.channel_keys], dtype=np.float32).T

    def predict(self, inputs: np.ndarray, batch: Batch) -> np.ndarray:
        anomaly_t0 = inputs[:, -1] - self.context.climatology(batch.init_times)
        clim_valid = self.context.climatology(batch.valid_times)
        forecast = clim_valid + self.alpha[None, :, :, None, None] * anomaly_t0[:, None]
        return forecast.astype(np.float32)

    def num_parameters(self) -> int:
        return int(self.alpha.size)


def build_model(context: SubmissionContext) -> DampedAnomalyPersistence:
    return DampedAnomalyPersistence(context)
