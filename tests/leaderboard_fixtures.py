"""Fabricated results files for the leaderboard tests: the real schema, made-up numbers (tests only)."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from bench.results import SCHEMA_VERSION, results_path, validate_results_json
from bench.task import FROZEN_FINGERPRINTS

T2M_TASK = "era5-64x32-12to4-t2m"
MULTIVAR_TASK = "era5-64x32-12to4-multivar"
LEAD_HOURS = [6, 12, 18, 24]
LATITUDES = [-87.1875 + 5.625 * i for i in range(32)]
INJECTED_NAME = "<script>alert(1)</script>"
OTHER_TASK_FINGERPRINT = "0ddba11c0ffee000"
DATA_FINGERPRINT = "5eed0fda7a000001"

# Per channel: units, a typical 24 h RMSE and the normalisation std (physical units).
CHANNELS: dict[str, tuple[str, float, float]] = {
    "2m_temperature": ("K", 1.2, 21.0),
    "geopotential_500": ("m**2 s**-2", 150.0, 3300.0),
    "temperature_850": ("K", 1.1, 13.0),
    "10m_u_component_of_wind": ("m s**-1", 1.5, 5.5),
    "10m_v_component_of_wind": ("m s**-1", 1.5, 4.7),
}
TASK_CHANNELS = {T2M_TASK: ["2m_temperature"], MULTIVAR_TASK: list(CHANNELS)}

# RMSE as a fraction of the channel's typical 24 h RMSE, per lead.
MODEL_SHAPE = [0.55, 0.75, 0.9, 1.0]
RMSE_SHAPES = {
    "persistence": [0.95, 1.55, 1.5, 1.25],
    "climatology": [2.2, 2.2, 2.2, 2.2],
}


def task_record(task_name: str, fingerprint: str | None = None) -> dict[str, Any]:
    """The ``task`` block of a results file, with the frozen fingerprint unless told otherwise."""
    return {
        "name": task_name,
        "fingerprint": fingerprint or FROZEN_FINGERPRINTS[task_name],
        "lead_hours": list(LEAD_HOURS),
        "channels": [{"key": key, "units": CHANNELS[key][0]} for key in TASK_CHANNELS[task_name]],
    }


def data_record(fingerprint: str = DATA_FINGERPRINT) -> dict[str, Any]:
    """The ``data`` block: a simulated dataset, so the site must say it is not ERA5."""
    return {
        "fingerprint": fingerprint,
        "title": "Toy GCM simulation (not ERA5)",
        "store": "toy-gcm-64x32.zarr",
        "climatology": {"window_days": 61, "window": "triangular", "method": "wb2-hourly-explicit",
                        "statistic": "mean", "years": "train split"},
        "split": "test",
        "n_init_times": 1464,
        "first_init_time": "2020-01-01T00:00",
        "last_init_time": "2020-12-31T18:00",
    }


def rmse_by_lead(name: str, channel: str, scale: float) -> list[float]:
    """Fabricated RMSE per lead: references by their own shape, models as ``scale`` x a growing curve."""
    shape = RMSE_SHAPES.get(name, [scale * s for s in MODEL_SHAPE])
    return [round(CHANNELS[channel][1] * s, 6) for s in shape]


def error_map(channel: str, rmse_24h: float) -> dict[str, Any]:
    """A 32 x 64 RMSE field, larger toward the poles, whose mean is about ``rmse_24h``."""
    field = [
        [round(rmse_24h * (0.6 + 0.8 * abs(math.sin(math.radians(lat))) + 0.1 * math.cos(math.radians(5.625 * j))), 5)
         for j in range(64)]
        for lat in LATITUDES
    ]
    return {"lead_hours": 24, "units": CHANNELS[channel][0], "rmse": field}


def channel_metrics(name: str, channel: str, scale: float, probabilistic: bool) -> dict[str, Any]:
    """Physical and normalized metrics of one channel."""
    rmse = rmse_by_lead(name, channel, scale)
    physical = {
        "rmse": rmse,
        "mae": [round(0.8 * v, 6) for v in rmse],
        "bias": [round((0.02 - 0.01 * i) * CHANNELS[channel][1] * scale, 6) for i in range(len(rmse))],
        "acc": [round(max(0.0, 1.0 - 0.05 * v / CHANNELS[channel][1]), 6) for v in rmse],
    }
    if probabilistic:
        physical["crps"] = [round(0.55 * v, 6) for v in rmse]
        physical["spread"] = [round(0.9 * v, 6) for v in rmse]
    std = CHANNELS[channel][2]
    normalized = {
        metric: [v if metric == "acc" else round(v / std, 8) for v in values] for metric, values in physical.items()
    }
    return {"physical": physical, "normalized": normalized}


def fabricate_results(
    name: str, task_name: str = T2M_TASK, track: str = "deterministic", scale: float = 1.0,
    task_fingerprint: str | None = None, with_error_maps: bool = True, **card: Any,
) -> dict[str, Any]:
    """A complete, valid results document for a made-up submission; ``card`` overrides model-card fields."""
    channels = TASK_CHANNELS[task_name]
    probabilistic = track == "probabilistic"
    submission = {
        "name": name, "kind": "code", "track": track, "tasks": [task_name],
        "authors": ["Ada Lovelace", "Lewis Fry Richardson"],
        "description": f"A fabricated {track} model for tests.",
        "license": "Apache-2.0", "code_url": "https://example.org/code", "paper_url": None,
        "parameters": 1_234_567,
        "training": {"data": "ERA5 1979-2014", "time": "2 h", "hardware": "1x A100"},
    }
    submission.update(card)
    if track == "codec":
        return codec_results(submission, task_name, channels, scale)
    raw = {
        "schema_version": SCHEMA_VERSION,
        "submission": submission,
        "task": task_record(task_name, task_fingerprint),
        "data": data_record(),
        "metrics": {c: channel_metrics(name, c, scale, probabilistic) for c in channels},
        "error_maps": {c: error_map(c, rmse_by_lead(name, c, scale)[-1]) for c in channels} if with_error_maps else {},
        "provenance": {
            "git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False,
            "harness_version": "0.1.0", "hardware": {"cpu": "test CPU", "gpu": None},
            "wall_time_s": 83.4, "evaluated_at": "2024-05-01T12:00:00+00:00",
        },
    }
    validate_results_json(raw, name)
    return raw


def codec_results(submission: dict[str, Any], task_name: str, channels: list[str], scale: float) -> dict[str, Any]:
    """A codec-track results document: one value per metric, the [0, 1] space and the codec section."""
    metrics = {}
    for c in channels:
        rmse = round(CHANNELS[c][1] * scale, 6)
        metrics[c] = {
            "physical": {"rmse": [rmse], "mae": [round(0.8 * rmse, 6)], "bias": [0.01], "max_abs_error": [round(8 * rmse, 6)],
                         "correlation": [0.998], "spectral_error": [0.2], "small_scale_power_ratio": [0.8]},
            "normalized": {"rmse": [round(rmse / CHANNELS[c][2], 8)], "mae": [round(0.8 * rmse / CHANNELS[c][2], 8)]},
            "unit_range": {"rmse": [0.004], "mae": [0.003], "psnr": [48.0], "ssim": [0.995]},
        }
    raw = {
        "schema_version": SCHEMA_VERSION, "submission": submission, "task": task_record(task_name), "data": data_record(),
        "metrics": metrics,
        "error_maps": {c: {**error_map(c, CHANNELS[c][1] * scale), "lead_hours": 0} for c in channels},
        "provenance": {"git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False, "harness_version": "0.1.0",
                       "hardware": {"cpu": "test CPU"}, "wall_time_s": 12.0, "evaluated_at": "2024-05-01T12:00:00+00:00"},
        "codec": {"latent_shape": [len(channels), 64], "latent_dtype": "float32", "latent_values": 64 * len(channels),
                  "field_values": 2048 * len(channels), "compression_ratio": 32.0, "encode_fields_per_s": 900.0,
                  "decode_fields_per_s": 1100.0, "throughput_note": "test", "spectra": {},
                  "description": {"input_scaling": "zscore", "latent_scaling": {"kind": "none"}, "resize_to": None, "native_grid": True}},
    }
    validate_results_json(raw, submission["name"])
    return raw


def write_results_file(results_dir: Path, raw: dict[str, Any], file_name: str | None = None) -> Path:
    """Write a results document where the harness would (``RESULTS/<task>/<name>.json``)."""
    path = results_path(results_dir, raw["task"]["name"], raw["submission"]["name"])
    if file_name is not None:  # for names that are not file names, such as INJECTED_NAME
        path = Path(results_dir) / raw["task"]["name"] / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw, indent=1))
    return path


def write_malformed_file(results_dir: Path, task_name: str = T2M_TASK) -> Path:
    """A results file whose RMSE list has the wrong number of leads: valid JSON, invalid schema."""
    raw = fabricate_results("broken-model", task_name)
    raw["metrics"]["2m_temperature"]["physical"]["rmse"] = [1.0, 2.0]
    return write_results_file(results_dir, raw)


@dataclasses.dataclass(frozen=True)
class FixtureSet:
    """What ``populate_results`` wrote: the file names tests look for."""

    results_dir: Path
    best_t2m: str
    malformed: Path
    other_fingerprint: str
    hostile: Path


def populate_results(results_dir: Path) -> FixtureSet:
    """A small realistic results folder: references, models on three tracks, two tasks, and the awkward cases."""
    ordinary = [
        fabricate_results("persistence", parameters=0, description="Repeat the latest field."),
        fabricate_results("climatology", parameters=0, description="The day-of-year climatology."),
        fabricate_results("unet-small", scale=0.5, parameters=2_400_000),
        fabricate_results("linear-regression", scale=0.7, kind="predictions", parameters=12_288),
        fabricate_results("gaussian-ensemble", track="probabilistic", scale=0.6),
        fabricate_results("pca-codec", track="codec", scale=0.3, parameters=4096),
        fabricate_results("old-spec-model", scale=0.4, task_fingerprint=OTHER_TASK_FINGERPRINT),
        fabricate_results("persistence", MULTIVAR_TASK, parameters=0),
        fabricate_results("climatology", MULTIVAR_TASK, parameters=0),
        fabricate_results("unet-multi", MULTIVAR_TASK, scale=0.6, parameters=8_100_000),
    ]
    for raw in ordinary:
        write_results_file(results_dir, raw)
    hostile = fabricate_results(
        INJECTED_NAME, scale=0.9, description="<img src=x onerror=alert(2)>", code_url="javascript:alert(3)",
        authors=["<b>Mallory</b>"],
    )
    return FixtureSet(
        results_dir=results_dir, best_t2m="unet-small", malformed=write_malformed_file(results_dir),
        other_fingerprint="old-spec-model", hostile=write_results_file(results_dir, hostile, "injected.json"),
    )
