"""Latent forecasters: latent U-Net, RAE direct and latent diffusion over a trained codec (tiny store, few steps)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from bench.dataset import PreparedData  # noqa: E402
from bench.errors import WeightsMissingError  # noqa: E402
from bench.evaluate import EvaluationSettings, evaluate  # noqa: E402
from bench.task import load_task  # noqa: E402
from bench.zoo.checkpoint import load_checkpoint  # noqa: E402
from bench.zoo.data import load_training_data  # noqa: E402
from bench.zoo.runner import train_submission  # noqa: E402
from zoo_helpers import LATENT_BASELINES, SMOKE, copy_baseline  # noqa: E402

T2M = "era5-64x32-12to4-t2m"
SMALL = {"latent_unet": {"base": 8}, "latent_diffusion": {"block_out_channels": [16, 16, 16], "norm_num_groups": 8,
                                                          "members": 3, "sampling_steps": 3}}


def codec_for(name: str) -> str:
    text = (copy_baseline.__globals__["PROJECT_ROOT"] / "baselines" / name / "train.yaml").read_text()
    return text.split('codec: "../', 1)[1].split("/", 1)[0]


@pytest.fixture(scope="module")
def codecs(prepared, tmp_path_factory):
    """Codec baselines trained for a few steps on the tiny store, beside each other (as in baselines/)."""
    root = tmp_path_factory.mktemp("zoo")
    trained = {}

    def train(name: str):
        if name not in trained:
            if name == "rae_mae_xl":
                train("rae_mae_small")
            path = copy_baseline(name, root)
            text = (path / "train.yaml").read_text().replace("  epochs: 6\n", "  epochs: 1\n  window_stride: 20\n")
            (path / "train.yaml").write_text(text)
            train_submission(path, T2M, prepared, progress=False, **SMOKE)
            trained[name] = path
        return trained[name]

    return root, train


def latent_copy(name: str, root, small: bool = True):
    path = copy_baseline(name, root)
    if small:
        import yaml

        recipe = yaml.safe_load((path / "train.yaml").read_text())
        recipe["model_args"].update(SMALL.get(recipe["model"], {}))
        (path / "train.yaml").write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("name", LATENT_BASELINES)
def test_latent_baseline_trains_saves_reloads_and_evaluates(name, codecs, prepared, tmp_path_factory):
    root, train = codecs
    train(codec_for(name))
    path = latent_copy(name, root)
    result = train_submission(path, T2M, prepared, progress=False, **SMOKE)
    weights = path / "weights" / T2M
    config = json.loads((weights / "config.json").read_text())
    assert config["kind"] == "latent" and config["codec_arch"]["kind"] == "codec"
    model, meta = load_checkpoint(weights, load_task(T2M))
    assert not model.training and meta["parameters"] == result.meta["parameters"]
    assert any(k.startswith("codec.") for k in model.state_dict())  # self-contained: the codec travels along
    out_dir = tmp_path_factory.mktemp("results")
    results, _ = evaluate(path, T2M, EvaluationSettings(prepared, progress=False), out_dir)
    metrics = results.metrics["2m_temperature"]["physical"]
    assert all(np.isfinite(metrics["rmse"]))
    if name == "latent_diffusion":
        assert results.ensemble["members"] == 3 and all(np.isfinite(metrics["crps"]))
        assert all(v is not None for v in metrics["spread_skill"])


def test_unit_latent_scaling_hands_the_network_raw_latents():
    """Document 004's question needs both paths: the codec's statistics, or latents taken as they come."""
    from bench.errors import TrainingError
    from bench.zoo.latent import LatentOptions, scale, unscale

    class Doubling:
        def scale_latents(self, z):
            return 2 * z

        def unscale_latents(self, u):
            return u / 2

    z = torch.randn(3, 4, 2, 2)
    codec_way, unit = LatentOptions(codec="c"), LatentOptions(codec="c", latent_scaling="unit")
    assert torch.equal(scale(Doubling(), z, codec_way), 2 * z) and torch.equal(unscale(Doubling(), 2 * z, codec_way), z)
    assert torch.equal(scale(Doubling(), z, unit), z) and torch.equal(unscale(Doubling(), z, unit), z)
    with pytest.raises(TrainingError, match="latent_scaling 'raw' is not one of"):
        LatentOptions(codec="c", latent_scaling="raw")


def test_latent_ablation_compares_the_codec_scaling_with_unit_statistics(codecs, prepared):
    from bench.zoo.ablation import run_ablation

    root, train = codecs
    train("vae")
    (root / "ablate").mkdir()
    (root / "ablate" / "vae").symlink_to(root / "vae")
    path = latent_copy("latent_unet_vae", root / "ablate")
    table = run_ablation(path, T2M, prepared, epochs=1, window_stride=20, val_stride=4, batch_size=4)
    assert [row["options"].get("latent_scaling", "codec") for row in table["rows"]] == ["codec", "unit"]
    assert all(np.isfinite(row["validation_score"]) for row in table["rows"])
    assert table["rows"][0]["validation_score"] != table["rows"][1]["validation_score"]


def test_a_latent_forecaster_without_its_codec_weights_is_a_named_error(prepared, tmp_path):
    path = latent_copy("latent_unet_vae", tmp_path)
    with pytest.raises(WeightsMissingError, match=r"codec weights at .*vae/weights/era5-64x32-12to4-t2m are missing.*bench train"):
        train_submission(path, T2M, prepared, progress=False, **SMOKE)


def _diffusion(codecs, prepared):
    root, train = codecs
    train("vae")
    path = latent_copy("latent_diffusion", root / "sampler")
    (root / "sampler" / "vae").symlink_to(root / "vae")
    train_submission(path, T2M, prepared, progress=False, **SMOKE)
    model, _ = load_checkpoint(path / "weights" / T2M, load_task(T2M))
    return model


def test_the_sampler_is_reproducible_for_a_seed_and_members_differ(codecs, prepared):
    model = _diffusion(codecs, prepared)
    data = load_training_data(PreparedData(prepared, load_task(T2M)))
    x, _, _ = data.batch(data.windows["validation"], np.arange(2))
    x = torch.from_numpy(x)
    a, b = model.sample(x, 4, seed=11), model.sample(x, 4, seed=11)
    c = model.sample(x, 4, seed=12)
    assert a.shape == (2, 4, 4, 1, 32, 64) and torch.equal(a, b) and not torch.equal(a, c)
    assert (a[:, 0] - a[:, 1]).abs().max() > 0  # members are distinct draws
    inputs = x.numpy() * model.std.numpy()[None, None, :, None, None] + model.mean.numpy()[None, None, :, None, None]
    times = data.windows["validation"].init_times.values[:2]
    one, two = model.sample_physical(inputs, times), model.sample_physical(inputs, times)
    assert one.shape == (2, 3, 4, 1, 32, 64) and np.array_equal(one, two)


def test_untrained_latent_unet_is_latent_persistence_and_depth_adapts_to_the_grid():
    from bench.zoo.models.latent_unet import LatentUNet, feasible_depth

    assert feasible_depth(4, 8, 3) == 2 and feasible_depth(8, 8, 3) == 3 and feasible_depth(3, 8, 3) == 0
    net = LatentUNet(4, 4, 8, base=8, depth=3)
    assert net.depth_used == 2
    assert torch.equal(net(torch.randn(2, 12, 4, 4, 8)), torch.zeros(2, 4, 4, 4, 8))


@pytest.mark.parametrize("name", LATENT_BASELINES)
def test_every_latent_baseline_names_a_codec_baseline(name):
    from zoo_helpers import CODEC_BASELINES

    assert codec_for(name) in CODEC_BASELINES
