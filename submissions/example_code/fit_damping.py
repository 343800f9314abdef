"""Fit the damping factors of model.py on the train split (run once, outside the harness).

For each channel and lead, alpha is the least-squares regression coefficient of the anomaly at
the valid time on the anomaly at t0 (latitude-weighted, as the benchmark scores RMSE):

    python submissions/example_code/fit_damping.py --data /work/shared/data/sim-era5like-64x32.zarr
"""
from __future__ import annotations

import argparse

import numpy as np

from bench.data_sources import resolve_data
from bench.dataset import PreparedData, climatology_for, valid_times
from bench.metrics import lat_weights
from bench.task import load_task

BATCH = 256


def fit(data: str, task_name: str) -> dict[str, list[float]]:
    """Damping factor per channel and lead, fitted on every train init time."""
    task = load_task(task_name)
    prepared = PreparedData(resolve_data(data, progress=False), task)
    init_times = prepared.init_times("train")
    weights = np.asarray(lat_weights(task.grid.latitude.values))[:, None]
    cross = np.zeros((task.output_steps, len(task.channels)))
    power = np.zeros(len(task.channels))
    for start in range(0, len(init_times), BATCH):
        batch = init_times[start : start + BATCH]
        anomaly_t0 = prepared.inputs(batch)[:, -1] - climatology_for(prepared.climatology, task, batch.values)
        anomaly_valid = prepared.targets(batch) - climatology_for(prepared.climatology, task, valid_times(task, batch))
        cross += (weights * anomaly_valid * anomaly_t0[:, None]).sum(axis=(0, 3, 4))
        power += (weights * anomaly_t0**2).sum(axis=(0, 2, 3))
    alpha = cross / power
    return {key: [round(float(a), 3) for a in alpha[:, index]] for index, key in enumerate(task.channel_keys)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="WB2-schema store or prepared directory")
    parser.add_argument("--task", default="era5-64x32-12to4-multivar")
    args = parser.parse_args()
    for key, alphas in fit(args.data, args.task).items():
        print(f'    "{key}": ({", ".join(f"{a:.3f}" for a in alphas)}),')
