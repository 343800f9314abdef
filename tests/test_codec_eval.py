"""The codec track end to end on the tiny store: the contract (shapes, latents passed through the
harness, the decoder sees nothing else), named errors with no results file, the reference codecs,
the real-fields board and the CLI table."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.codec_metrics import CodecScoreAccumulator
from bench.dataset import PreparedData
from bench.evaluate import EvaluationSettings, evaluate
from bench.reference_codecs import CoarsenCodec, EofCodec, fit_eofs, interpolation_matrix, save_eofs
from bench.results import SCHEMA_VERSION, Results, results_path
from bench.submission import SubmissionContext
from bench.task import load_task
from conftest import PROJECT_ROOT
from wb2_store import make_wb2_store

T2M, MULTI = "era5-64x32-12to4-t2m", "era5-64x32-12to4-multivar"

CODEC_TEMPLATE = '''
import numpy as np

class Codec:
    latent_shape = (1, 16, 32)

    def encode(self, fields):
        return fields[:, :, ::2, ::2].astype(np.float32)

    def decode(self, latents):
        return np.repeat(np.repeat(latents, 2, axis=2), 2, axis=3)

    def describe(self):
        return {"input_scaling": "none", "latent_scaling": {"kind": "none"}, "resize_to": None, "native_grid": True}

BODY

def build_codec(context):
    return Probe()
'''


@pytest.fixture()
def make_codec(tmp_path):
    """Write a codec submission whose model.py defines ``class Probe(Codec)`` with the given body."""

    def make(body: str = "class Probe(Codec):\n    pass\n", name: str = "probe-codec", tasks=(T2M,)) -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "submission.yaml").write_text(
            f"name: {name}\nkind: code\ntrack: codec\ntasks: [{', '.join(tasks)}]\nauthors: [Tester]\n"
            "description: a test codec\nlicense: MIT\nentry_point: model.py:build_codec\n"
        )
        (root / "model.py").write_text(CODEC_TEMPLATE.replace("BODY", body))
        return root

    return make


def settings(prepared, batch_size=16):
    return EvaluationSettings(prepared, batch_size=batch_size, progress=False)


def test_coarsen_codec_scores_equal_a_direct_numpy_computation(prepared, tmp_path):
    task = load_task(MULTI)
    results, path = evaluate(PROJECT_ROOT / "baselines/coarsen2_codec", MULTI, settings(prepared), tmp_path)
    data = PreparedData(prepared, task)
    positions = data.split_positions("test")
    truth = data.fields_at(positions)
    assert len(truth) == results.data["n_fields"] == 48  # every 6-hourly field of the test days in the store, not windows
    codec = CoarsenCodec(SubmissionContext(task=task, stats=data.stats, submission_dir=tmp_path), factor=2)
    expected = CodecScoreAccumulator(task.channel_keys, data.stats, task.grid.latitude.values)
    expected.add(truth, codec.decode(codec.encode(truth)))
    assert results.metrics == expected.metric_table()
    assert results.codec["latent_shape"] == [5, 16, 32] and results.codec["compression_ratio"] == 4.0
    assert results.codec["encode_fields_per_s"] > 0 and results.codec["description"]["native_grid"] is True
    assert path == results_path(tmp_path, MULTI, "coarsen2_codec")
    raw = json.loads(path.read_text())
    assert raw["submission"]["track"] == "codec" and raw["schema_version"] == SCHEMA_VERSION
    assert Results.read(path).is_codec
    assert not list(tmp_path.rglob(".*"))  # no temp files left behind


def test_coarsening_a_field_that_is_already_coarse_and_smooth_in_longitude_is_exact():
    up = interpolation_matrix(64, 4, periodic=True)
    np.testing.assert_allclose(up.sum(axis=1), 1.0)
    coarse = np.cos(2 * np.pi * np.arange(16) / 16)
    assert np.abs(up @ coarse).max() <= 1.0 + 1e-12  # interpolation never overshoots
    lat_up = interpolation_matrix(32, 2, periodic=False)
    np.testing.assert_allclose(lat_up @ np.arange(16.0), np.clip((np.arange(32) - 0.5) / 2, 0, 15))


def test_eofs_reconstruct_fields_spanned_by_k_patterns_exactly(tmp_path):
    rng = np.random.default_rng(0)
    patterns = rng.standard_normal((3, 32, 64))
    fields = 280 + np.einsum("np,pij->nij", rng.standard_normal((200, 3)), patterns)
    task = load_task(T2M)
    save_eofs(tmp_path, "2m_temperature", fit_eofs(fields, task.grid.latitude.values, k=3))
    context = SubmissionContext(task=task, stats=None, submission_dir=tmp_path)
    codec = EofCodec(context, k=3, weights_dir=tmp_path)
    x = fields[:5, None].astype(np.float32)
    assert codec.encode(x).shape == (5, 1, 3)
    np.testing.assert_allclose(codec.decode(codec.encode(x)), x, atol=2e-3)
    assert np.abs(EofCodec(context, k=2, weights_dir=tmp_path).decode(codec.encode(x)[:, :, :2]) - x).max() > 0.1


def test_the_committed_eof_codec_scores_on_the_multivar_task(prepared, tmp_path):
    results, _ = evaluate(PROJECT_ROOT / "baselines/eof32_codec", MULTI, settings(prepared), tmp_path)
    assert results.codec["latent_shape"] == [5, 32] and results.codec["compression_ratio"] == 64.0
    # The tiny store's waves are not the simulated climate the EOFs were fitted on: only check the scores exist.
    assert all(spaces["physical"]["rmse"][0] > 0 and spaces["unit_range"]["ssim"][0] is not None for spaces in results.metrics.values())


def test_the_decoder_gets_exactly_the_latents_the_encoder_returned(prepared, make_codec, tmp_path):
    # Latents full of awkward bit patterns; the decoder answers with a hash of the bytes it received.
    body = '''
import hashlib

class Probe(Codec):
    latent_shape = (3, 5)

    def encode(self, fields):
        latents = np.empty((len(fields), 3, 5), np.float32)
        for i, field in enumerate(fields):
            rng = np.random.default_rng(int(field[0, 0, 0] * 1000) % 2**32)
            latents[i] = rng.standard_normal((3, 5)).astype(np.float32) * 1e-30
        latents[:, 0, 0] = -0.0
        return latents

    def decode(self, latents):
        out = np.empty((len(latents), 1, 32, 64), np.float32)
        for i, latent in enumerate(latents):
            out[i] = 200 + int(hashlib.sha256(latent.tobytes()).hexdigest()[:6], 16) / 2**24
        return out
'''
    results, path = evaluate(make_codec(body), T2M, settings(prepared), tmp_path)
    data = PreparedData(prepared, load_task(T2M))
    truth = data.fields_at(data.split_positions("test"))
    expected = []
    for field in truth:
        rng = np.random.default_rng(int(field[0, 0, 0] * 1000) % 2**32)
        latent = rng.standard_normal((3, 5)).astype(np.float32) * 1e-30
        latent[0, 0] = -0.0
        expected.append(np.full((1, 32, 64), 200 + int(hashlib.sha256(latent.tobytes()).hexdigest()[:6], 16) / 2**24, np.float32))
    scorer = CodecScoreAccumulator(["2m_temperature"], data.stats, data.task.grid.latitude.values)
    scorer.add(truth, np.stack(expected))
    assert results.metrics == scorer.metric_table()
    assert results.codec["compression_ratio"] == pytest.approx(2048 / 15)


SIDE_CHANNEL = '''
import os, tempfile
STASH = {}

class Probe(Codec):
    def encode(self, fields):
        STASH["fields"] = fields.copy()
        for folder in (os.environ.get("HOME", "/tmp"), tempfile.gettempdir(), "/tmp", "/dev/shm", os.path.dirname(__file__)):
            try:
                np.save(os.path.join(folder, "stash.npy"), fields)
            except OSError:
                pass
        return super().encode(fields)

    def decode(self, latents):
        if "fields" in STASH:
            return STASH.pop("fields")
        for folder in (os.environ.get("HOME", "/tmp"), tempfile.gettempdir(), "/tmp", "/dev/shm", os.path.dirname(__file__)):
            path = os.path.join(folder, "stash.npy")
            if os.path.exists(path):
                return np.load(path)
        raise RuntimeError("no side channel reached the decoder")
'''


def test_a_codec_hiding_fields_in_a_side_channel_fails(prepared, make_codec, tmp_path):
    root = make_codec(SIDE_CHANNEL)
    out = tmp_path / "results"
    with pytest.raises(Exception) as error:
        evaluate(root, T2M, settings(prepared), out)
    assert type(error.value).__name__ == "SubmissionCrashedError"
    assert "no side channel reached the decoder" in str(error.value) and "while decoding" in str(error.value)
    assert not out.exists() and not (root / "stash.npy").exists()


BAD_CODECS = {
    "wrong latent shape": ("class Probe(Codec):\n    latent_shape = (1, 8, 8)\n", "LatentShapeError",
                           "latents have shape (16, 1, 16, 32), expected (16, 1, 8, 8)"),
    "wrong output shape": ("class Probe(Codec):\n    def decode(self, latents):\n        return latents\n", "OutputShapeError",
                           "reconstructions have shape (16, 1, 16, 32), expected (16, 1, 32, 64)"),
    "nan latents": ("class Probe(Codec):\n    def encode(self, fields):\n        z = super().encode(fields)\n        z[0, 0, 0, 0] = np.nan\n        return z\n",
                    "NonFiniteLatentError", "latents have 1 NaN/inf values"),
    "nan output": ("class Probe(Codec):\n    def decode(self, latents):\n        x = super().decode(latents)\n        x[-1, 0, 5, 5] = np.inf\n        return x\n",
                   "NonFiniteOutputError", "reconstruction has 1 NaN/inf values"),
    "crash": ("class Probe(Codec):\n    def encode(self, fields):\n        raise ValueError('boom in encode')\n", "SubmissionCrashedError",
              "ValueError while encoding: boom in encode"),
    "integer latents": ("class Probe(Codec):\n    def encode(self, fields):\n        return super().encode(fields).astype(np.int32)\n",
                        "OutputDtypeError", "latents dtype is int32; return float32"),
    "no decode": ("class Probe:\n    latent_shape = (1, 16, 32)\n    def encode(self, fields):\n        return fields\n"
                  "    def describe(self):\n        return {}\n", "CodecContractError", "it has no decode"),
    "bad latent_shape": ("class Probe(Codec):\n    latent_shape = 'small'\n", "CodecContractError", "declare one field's latent shape"),
    "forecaster": ("class Probe:\n    def predict(self, inputs, batch):\n        return inputs\n", "CodecContractError",
                   "must return an object with encode(fields), decode(latents) and describe()"),
}


@pytest.mark.parametrize("case", sorted(BAD_CODECS))
def test_a_broken_codec_gets_a_named_error_and_no_results_file(case, prepared, make_codec, tmp_path):
    body, error_name, fragment = BAD_CODECS[case]
    root = make_codec(body)
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["evaluate", str(root), "--data", str(prepared), "--out", str(out), "--batch-size", "16", "--quiet"])
    assert result.exit_code == 2, result.output
    assert f"error: {error_name}: " in result.output and fragment in result.output, result.output
    assert not out.exists()


def test_a_codec_cannot_read_the_evaluation_data(prepared, make_codec, tmp_path):
    body = f"class Probe(Codec):\n    def encode(self, fields):\n        open({str(prepared / 'manifest.json')!r}).read()\n        return super().encode(fields)\n"
    result = CliRunner().invoke(cli, ["evaluate", str(make_codec(body)), "--data", str(prepared), "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 2 and ("TargetAccessError" in result.output or "PermissionError" in result.output), result.output


@pytest.fixture(scope="module")
def real_like_store(tmp_path_factory) -> Path:
    """A store shaped like the real ERA5 sample: t2m, 10 m winds and msl only, 10 irregular times."""
    ds = make_wb2_store(periods=(("2026-03-25", "2026-03-27T12"),), seed=5).isel(time=slice(0, 10))
    ds = ds.drop_vars(["geopotential", "temperature", "level", "land_sea_mask", "geopotential_at_surface"])
    ds["mean_sea_level_pressure"] = ds["2m_temperature"] * 0 + 101325.0
    ds.attrs["title"] = "Real-like sample (10 fields)"
    path = tmp_path_factory.mktemp("real") / "real-like-64x32.zarr"
    ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path


def test_the_real_fields_board_scores_t2m_and_skips_multivar_with_a_reason(prepared, real_like_store, tmp_path):
    out = tmp_path / "results"
    args = ["evaluate", str(PROJECT_ROOT / "baselines/coarsen4_codec"), "--data", str(prepared), "--fields", str(real_like_store),
            "--out", str(out), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"skipped {MULTI}: " in result.output and "has no geopotential_500, temperature_850" in result.output
    path = results_path(out, T2M, "coarsen4_codec", "real-like-64x32")
    results = Results.read(path)
    assert results.data["n_fields"] == 10 and results.data["title"] == "Real-like sample (10 fields)"
    assert "train split of" in results.data["statistics"] and results.codec["compression_ratio"] == 16.0
    assert "RMSE" in result.output and "PSNR" in result.output and "compression 16x" in result.output
    # Statistics come from the simulated (prepared) data, never from the scored fields.
    task = load_task(T2M)
    stats = PreparedData(prepared, task).stats
    import xarray as xr

    truth = xr.open_zarr(real_like_store)["2m_temperature"].values[:, None].astype(np.float32)
    codec = CoarsenCodec(SubmissionContext(task=task, stats=stats, submission_dir=tmp_path), factor=4)
    expected = CodecScoreAccumulator(task.channel_keys, stats, task.grid.latitude.values)
    expected.add(truth, codec.decode(codec.encode(truth)))
    assert results.metrics == expected.metric_table()
    explicit = CliRunner().invoke(cli, args + ["--task", MULTI])
    assert explicit.exit_code == 2 and "MissingChannelsError" in explicit.output


def test_bench_evaluate_prints_the_reconstruction_table(prepared, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(PROJECT_ROOT / "baselines/coarsen4_codec"), "--data", str(prepared),
                                      "--task", T2M, "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "reconstruction of 48 fields" in result.output and "compression 16x vs float32" in result.output
    assert "2m_temperature [K]" in result.output and "SSIM" in result.output


def test_validate_runs_a_codec_on_one_batch(prepared):
    from bench.validation import validate

    report = validate(PROJECT_ROOT / "baselines/coarsen2_codec", prepared, settings(prepared, 8))
    assert report.ok, report.problems
    assert any("encoder and decoder built in the sandbox" in line for line in report.checked)


def test_compare_codecs_draws_maps_table_and_error_against_compression(prepared, tmp_path):
    results = tmp_path / "results"
    for codec in ("coarsen2_codec", "coarsen4_codec"):
        evaluate(PROJECT_ROOT / "baselines" / codec, T2M, settings(prepared), results)
    out = tmp_path / "comparison"
    result = CliRunner().invoke(cli, ["compare-codecs", str(PROJECT_ROOT / "baselines/coarsen2_codec"), str(PROJECT_ROOT / "baselines/coarsen4_codec"),
                                      "--data", str(prepared), "--results", str(results), "--out", str(out), "--time", "2020-01-03T06"])
    assert result.exit_code == 0, result.output
    table = (out / f"table_{T2M}.md").read_text()
    assert table.index("| coarsen2_codec | 1x16x32 | 4x | yes |") < table.index("| coarsen4_codec | 1x8x16 | 16x | yes |")
    assert (out / f"maps_{T2M}_2m_temperature_2020-01-03T0600.png").stat().st_size > 10_000
    assert (out / f"error_vs_compression_{T2M}_2m_temperature.png").is_file()


TORCH_CODEC = '''
import numpy as np
import torch


class TinyConvCodec(torch.nn.Module):
    """A 4x4 strided convolution down and a transposed one up, in z-score space (weights fixed by a seed)."""

    def __init__(self, context):
        super().__init__()
        torch.manual_seed(0)
        self.down = torch.nn.Conv2d(1, 2, 4, stride=4)
        self.up = torch.nn.ConvTranspose2d(2, 1, 4, stride=4)
        self.mean, self.std = context.stats.stats["2m_temperature"].mean, context.stats.stats["2m_temperature"].std
        self.latent_shape = (2, 8, 16)

    @torch.no_grad()
    def encode(self, fields):
        return self.down(torch.from_numpy((fields - self.mean) / self.std)).numpy()

    @torch.no_grad()
    def decode(self, latents):
        return (self.up(torch.from_numpy(latents)).numpy() * self.std + self.mean).astype(np.float32)

    def describe(self):
        return {"input_scaling": "zscore", "latent_scaling": {"kind": "none"}, "resize_to": None, "native_grid": True}


def build_codec(context):
    return TinyConvCodec(context)
'''


@pytest.mark.zoo
def test_a_torch_codec_runs_in_both_sandboxes(prepared, tmp_path):
    pytest.importorskip("torch")
    root = tmp_path / "torch-codec"
    root.mkdir()
    (root / "submission.yaml").write_text(
        "name: torch-codec\nkind: code\ntrack: codec\ntasks: [era5-64x32-12to4-t2m]\nauthors: [Tester]\n"
        "description: a torch test codec\nlicense: MIT\nentry_point: model.py:build_codec\n")
    (root / "model.py").write_text(TORCH_CODEC)
    results, _ = evaluate(root, T2M, settings(prepared), tmp_path / "results")
    assert results.codec["latent_shape"] == [2, 8, 16] and results.codec["compression_ratio"] == 8.0
    assert results.submission["parameters"] == 2 * 16 + 2 + 2 * 16 + 1  # counted by torch inside the sandbox
    assert results.metrics["2m_temperature"]["physical"]["rmse"][0] > 0
