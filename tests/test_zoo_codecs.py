"""Codecs of the zoo: the vMF sampler and KL, every family's forward/backward, local from_pretrained loading,
training a few steps through the shared loop, save/load round trips and train-split latent statistics."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.dataset import PreparedData  # noqa: E402
from bench.errors import CheckpointError, TrainingError  # noqa: E402
from bench.normalization import NormStats  # noqa: E402
from bench.task import load_task  # noqa: E402
from bench.zoo.checkpoint import load_checkpoint, load_codec, save_checkpoint  # noqa: E402
from bench.zoo.codec import Codec  # noqa: E402
from bench.zoo.codecs.svae import mean_resultant_length, sample_vmf, vmf_kl_to_uniform  # noqa: E402
from bench.zoo.config import CodecOptions  # noqa: E402
from bench.zoo.data import load_training_data  # noqa: E402
from bench.zoo.registry import create_model, list_models  # noqa: E402
from bench.zoo.runner import train_submission  # noqa: E402
from zoo_helpers import CODEC_BASELINES, SMOKE, copy_baseline  # noqa: E402

T2M, MULTI = "era5-64x32-12to4-t2m", "era5-64x32-12to4-multivar"
TINY_VIT = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
TINY = {
    "vae": dict(latent_channels=4, hidden_dims=(8, 16, 16)),
    "svae": dict(latent_channels=4, hidden_dims=(8, 16, 16)),
    "sd_vae": dict(latent_channels=4, block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=8),
    "va_vae": dict(latent_channels=8, base_channels=8, layers_per_block=1, norm_num_groups=8),
    "rae": dict(encoder="mae_small", encoder_overrides=TINY_VIT, decoder="small", decoder_overrides={"hidden_size": 16, "num_layers": 1, "num_heads": 2}),
    "rae_mae_pretrain": dict(encoder="mae_small", encoder_overrides={**TINY_VIT, "decoder_hidden_size": 16, "decoder_num_hidden_layers": 1,
                                                                       "decoder_num_attention_heads": 2, "decoder_intermediate_size": 32}),
}


def _stats(channels: int) -> NormStats:
    raw = {"channels": [f"c{i}" for i in range(channels)],
           "stats": {f"c{i}": {"mean": 280.0 + i, "std": 10.0 + i, "diff_std": 1.0, "min": 200.0, "max": 330.0} for i in range(channels)}}
    return NormStats.from_json(raw)


# --- the von Mises-Fisher distribution ---------------------------------------------------------------------
@pytest.mark.parametrize("m,kappa", [(3, 5.0), (4, 10.0), (8, 50.0)])
def test_vmf_samples_point_along_the_mean_with_the_right_concentration(m, kappa):
    torch.manual_seed(0)
    mu = torch.nn.functional.normalize(torch.randn(m), dim=0)
    n = 20000
    z = sample_vmf(mu.expand(n, m).contiguous(), torch.full((n,), kappa))
    assert torch.allclose(z.norm(dim=-1), torch.ones(n), atol=1e-4)  # on the sphere
    mean = z.mean(0)
    assert torch.nn.functional.cosine_similarity(mean, mu, dim=0) > 0.999
    expected = float(mean_resultant_length(torch.tensor(kappa), m))
    assert float(mean.norm()) == pytest.approx(expected, abs=0.01)  # E[mu . z] = A_m(kappa)


def test_vmf_kl_is_nonnegative_and_vanishes_as_kappa_goes_to_zero():
    kappas = torch.tensor([1e-6, 1e-3, 0.1, 1.0, 10.0, 100.0, 1000.0])
    for m in (3, 4, 16):
        kl = vmf_kl_to_uniform(kappas, m)
        assert torch.all(kl >= -1e-6) and torch.all(torch.isfinite(kl))
        assert torch.all(kl[1:] >= kl[:-1] - 1e-6)  # more concentrated, further from uniform
        assert float(kl[0]) == pytest.approx(0.0, abs=1e-6)


def test_vmf_kl_gradient_matches_finite_differences():
    k = torch.tensor([0.5, 3.0, 40.0], dtype=torch.float64, requires_grad=True)
    kl = vmf_kl_to_uniform(k, 4).double()
    (grad,) = torch.autograd.grad(kl.sum(), k)
    h = 1e-2  # the KL is returned in float32: a wider step keeps rounding out of the difference
    numeric = (vmf_kl_to_uniform(k.detach() + h, 4).double() - vmf_kl_to_uniform(k.detach() - h, 4).double()) / (2 * h)
    assert torch.allclose(grad, numeric, rtol=2e-2, atol=1e-4)


def test_vmf_sample_has_a_gradient_in_kappa_and_the_mean():
    mu = torch.nn.functional.normalize(torch.randn(64, 4), dim=-1).requires_grad_(True)
    kappa = torch.full((64,), 5.0, requires_grad=True)
    z = sample_vmf(mu, kappa)
    (z * torch.randn_like(z)).sum().backward()
    assert torch.isfinite(kappa.grad).all() and kappa.grad.abs().sum() > 0 and mu.grad.abs().sum() > 0


# --- every family ---------------------------------------------------------------------------------------------
def test_every_codec_family_is_registered_as_a_codec():
    assert set(TINY) <= set(list_models("codec"))
    assert not set(list_models("codec")) & set(list_models("forecaster"))


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("channels", [1, 5])
def test_codec_family_forward_backward_and_latent_shape(name, channels):
    torch.manual_seed(0)
    net = create_model(name, in_channels=channels, height=32, width=64, **TINY[name])
    codec = Codec(net, _stats(channels), CodecOptions(input_scaling="minmax"), 32, 64)
    x = torch.randn(2, channels, 32, 64)
    loss, logs = codec.training_loss((x, torch.zeros(2)), torch.ones(32))
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    z = codec.encode(x)
    assert tuple(z.shape[1:]) == codec.latent_shape and codec.decode(z).shape == x.shape
    described = codec.describe()
    json.dumps(described)
    assert described["native_grid"] and described["compression_ratio"] == pytest.approx(channels * 2048 / np.prod(codec.latent_shape))


def test_rae_keeps_its_encoder_frozen():
    net = create_model("rae", in_channels=1, height=32, width=64, **TINY["rae"])
    assert all(not p.requires_grad for p in net.encoder.parameters())
    assert net.trainable_parameters() and all(p.requires_grad for p in net.trainable_parameters())
    net.train()
    assert not net.encoder.training


def test_the_documents_way_resizes_before_encoding_and_decodes_on_the_native_grid():
    net = create_model("vae", in_channels=1, height=64, width=64, **TINY["vae"])
    codec = Codec(net, _stats(1), CodecOptions(resize_to=(64, 64)), 32, 64)
    x = torch.randn(2, 1, 32, 64)
    assert codec.latent_shape == (4, 8, 8) and codec.decode(codec.encode(x)).shape == x.shape
    assert codec.describe()["resize_to"] == [64, 64] and not codec.describe()["native_grid"]
    assert codec.describe()["compression_ratio"] == pytest.approx(2048 / 256)


def test_latent_scaling_round_trips_and_uses_the_given_statistics():
    for kind in ("statistics", "scale_factor", "none"):
        net = create_model("vae", in_channels=1, height=32, width=64, **TINY["vae"])
        codec = Codec(net, _stats(1), CodecOptions(latent_scaling=kind, scale_factor=0.18215 if kind == "scale_factor" else None), 32, 64)
        codec.latent_mean.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        codec.latent_std.copy_(torch.tensor([2.0, 2.0, 4.0, 4.0]))
        z = torch.randn(3, 4, 4, 8)
        assert torch.allclose(codec.unscale_latents(codec.scale_latents(z)), z, atol=1e-6)
        assert codec.describe()["latent_scaling"]["kind"] == kind
    assert torch.allclose(codec.scale_latents(z), z)  # none
    assert Codec(net, _stats(1), CodecOptions(latent_scaling="scale_factor", scale_factor=0.18215), 32, 64).describe()[
        "latent_scaling"] == {"kind": "scale_factor", "value": pytest.approx(0.18215)}


# --- local pretrained loading ------------------------------------------------------------------------------
def test_autoencoder_kl_loads_from_a_local_directory(tmp_path):
    from diffusers import AutoencoderKL

    from bench.zoo.codecs.sd_vae import SD_SCALING_FACTOR, sd_layout

    vae = AutoencoderKL(**sd_layout(3, 4, (8, 16, 16, 16), 1, 8, sample_size=32))
    assert vae.config.scaling_factor == SD_SCALING_FACTOR and vae.config.latent_channels == 4
    vae.save_pretrained(tmp_path / "sd-vae")
    net = create_model("sd_vae_pretrained", in_channels=3, height=32, width=64, pretrained_path=str(tmp_path / "sd-vae"))
    x = torch.randn(1, 3, 32, 64)
    assert torch.allclose(net.posterior(x).mode(), vae.encode(x).latent_dist.mean)
    assert net.posterior(x).mode().shape == (1, 4, 4, 8)  # the SD layout: /8, 4 channels


@pytest.mark.parametrize("encoder,overrides", [("dinov2_b14", {**TINY_VIT, "image_size": 28}), ("mae_b16", {**TINY_VIT, "image_size": 32}),
                                               ("siglip2_b16", {**TINY_VIT, "num_patches": 4}), ("mae_small", TINY_VIT)])
def test_rae_encoders_load_from_a_local_directory(encoder, overrides, tmp_path):
    from bench.zoo.codecs.rae import ENCODERS, build_encoder, named_encoder_config

    assert ENCODERS[encoder]["hidden_size"] == (64 if encoder == "mae_small" else 768)  # the documents' B-size encoders
    saved = build_encoder(named_encoder_config(encoder, 3, **overrides))
    saved.save_pretrained(tmp_path / encoder)
    a = create_model("rae", in_channels=3, height=32, width=64, encoder=encoder, encoder_overrides=overrides)
    b = create_model("rae", in_channels=3, height=32, width=64, encoder_path=str(tmp_path / encoder))
    a.encoder.load_state_dict(saved.state_dict())
    x = torch.randn(2, 3, 32, 64)
    assert torch.allclose(a.posterior(x).mode(), b.posterior(x).mode(), atol=1e-6)


# --- the shared loop, checkpoints and latent statistics ------------------------------------------------------
def _train_codec(name: str, task: str, prepared, tmp_path):
    if name == "rae_mae_xl":  # its frozen encoder is rae_mae_small's
        _train_codec("rae_mae_small", task, prepared, tmp_path)
    root = tmp_path / name
    if not root.exists():
        copy_baseline(name, tmp_path)
        # The pretrain block's epochs (indented), whatever the recipe says: a smoke run pretrains 1 epoch.
        text = re.sub(r"^  epochs: \d+\n", "  epochs: 1\n  window_stride: 20\n", (root / "train.yaml").read_text(), flags=re.M)
        (root / "train.yaml").write_text(text)
    train_submission(root, task, prepared, progress=False, **SMOKE)
    return root


@pytest.mark.parametrize("name", CODEC_BASELINES)
def test_codec_baseline_trains_through_the_shared_loop_and_round_trips(name, prepared, tmp_path):
    task = MULTI if name in ("vae", "va_vae") else T2M
    root = _train_codec(name, task, prepared, tmp_path)
    weights = root / "weights" / task
    meta = json.loads((weights / "meta.json").read_text())
    assert meta["task_fingerprint"] == load_task(task).fingerprint
    assert meta["latent_statistics"]["train_fields"] > 0 and meta["latent_scaling"]["kind"] in ("statistics", "scale_factor", "none")
    codec = load_codec(weights, load_task(task))
    assert not codec.training and codec.describe()["latent_scaling"] == meta["latent_scaling"]
    data = load_training_data(PreparedData(prepared, load_task(task)))
    x = torch.from_numpy(data.fields[:3])
    z = codec.encode(x)
    assert tuple(z.shape[1:]) == codec.latent_shape and torch.isfinite(codec.decode(z)).all()
    # Save the loaded codec again and reload: identical outputs (weights already fp16, statistics fp32).
    config = json.loads((weights / "config.json").read_text())
    save_checkpoint(tmp_path / "again", codec, config, meta)
    again = load_codec(tmp_path / "again", load_task(task))
    assert torch.equal(again.encode(x), z) and torch.equal(again.decode(z), codec.decode(z))
    assert torch.equal(again.latent_mean, codec.latent_mean) and again.latent_mean.dtype == torch.float32


def test_latent_statistics_come_from_the_train_split_only(prepared, tmp_path):
    import shutil

    import zarr

    root = _train_codec("vae", T2M, prepared, tmp_path)
    task = load_task(T2M)
    codec = load_codec(root / "weights" / T2M, task)
    data = load_training_data(PreparedData(prepared, task))
    train = data.field_set("train")
    assert data.times[train.positions].max() < task.splits["validation"].first_time
    z = codec.latents_of(data.fields[train.positions], torch.device("cpu"))
    # computed before the weights were stored in fp16: equal up to that rounding
    assert torch.allclose(codec.latent_mean, z.mean(dim=(0, 2, 3)), atol=2e-3)
    assert torch.allclose(codec.latent_std, z.std(dim=(0, 2, 3)), rtol=5e-3)
    with pytest.raises(TrainingError, match="never loaded"):
        data.field_set("test")
    # Shift the validation year by 30 K: the statistics (and weights) stay, only the validation score moves.
    shifted = tmp_path / "shifted"
    shutil.copytree(prepared, shifted)
    times = PreparedData(shifted, task).times
    first, last = (int(np.searchsorted(times.values, np.datetime64(task.splits[k].first_time))) for k in ("validation", "test"))
    array = zarr.open(str(shifted / "data.zarr" / task.channel_keys[0]), mode="r+")
    array[first:last] = array[first:last] + 30.0
    other = copy_baseline("vae", tmp_path / "other")
    train_submission(other, T2M, shifted, progress=False, **SMOKE)
    a = json.loads((root / "weights" / T2M / "meta.json").read_text())
    b = json.loads((other / "weights" / T2M / "meta.json").read_text())
    assert a["latent_statistics"] == b["latent_statistics"]
    assert a["validation"]["score"] != b["validation"]["score"]


def test_build_zoo_codec_serves_physical_fields(prepared, tmp_path):
    from bench.submission import SubmissionContext
    from bench.zoo.serving import build_zoo_codec

    root = _train_codec("vae", T2M, prepared, tmp_path)
    task = load_task(T2M)
    pd_data = PreparedData(prepared, task)
    context = SubmissionContext(task=task, stats=pd_data.stats, submission_dir=root)
    codec = build_zoo_codec(context)
    fields = np.stack([pd_data.data[c].isel(time=slice(0, 4)).values for c in pd_data.channels], axis=1).astype(np.float32)
    latents = codec.encode(fields)
    assert latents.shape == (4, *codec.latent_shape) and latents.dtype == np.float32
    out = codec.decode(latents)
    assert out.shape == fields.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert abs(float(out.mean()) - float(fields.mean())) < 5 * float(fields.std())  # physical units, not z-scores
    described = codec.describe()
    assert described["input_scaling"].startswith("minmax") and described["resize_to"] is None
    json.dumps(described)


def test_load_codec_refuses_a_forecaster(prepared, tmp_path):
    root = copy_baseline("cnn", tmp_path)
    train_submission(root, T2M, prepared, progress=False, **SMOKE)
    model, _ = load_checkpoint(root / "weights" / T2M, load_task(T2M))
    with pytest.raises(CheckpointError, match="not a codec"):
        load_codec(root / "weights" / T2M, load_task(T2M))


def test_unknown_codec_option_is_a_named_error(tmp_path):
    from bench.zoo.config import read_train_config

    (tmp_path / "train.yaml").write_text("model: vae\ncodec: {kl: 1.0}\n")
    with pytest.raises(TrainingError, match="unknown codec option"):
        read_train_config(tmp_path, T2M)


def test_a_fresh_mae_has_its_sin_cos_positions():
    # transformers 5 leaves ViTMAE's fixed position embeddings at zero on a fresh model; MAE cannot learn without them.
    net = create_model("rae_mae_pretrain", in_channels=1, height=32, width=64, **{k: v for k, v in TINY["rae_mae_pretrain"].items()})
    assert net.mae.vit.embeddings.position_embeddings.abs().sum() > 0
    assert net.mae.decoder.decoder_pos_embed.abs().sum() > 0
    rae = create_model("rae", in_channels=1, height=32, width=64, **TINY["rae"])
    assert rae.encoder.embeddings.position_embeddings.abs().sum() > 0
