"""Zoo architecture pieces: the registry, shared blocks, ridge against scikit-learn, torch-free harness."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.errors import BenchError  # noqa: E402
from bench.zoo import create_model, list_models  # noqa: E402
from bench.zoo.blocks import ConvLSTMCell, PeriodicConv2d, UNet  # noqa: E402
from bench.zoo.forecaster import year_fraction  # noqa: E402
from bench.zoo.ridge import low_rank_factors, ridge_dual  # noqa: E402

SHAPE = dict(in_steps=12, out_steps=4, height=32, width=64)


def test_the_harness_imports_without_torch():
    code = "import sys, bench.cli, bench.evaluate, bench.leaderboard.site, bench.training_record; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", [n for n in list_models("forecaster") if n != "ridge"])  # codecs and latent models: their own tests
@pytest.mark.parametrize("channels", [1, 5])
def test_every_registered_model_maps_12_inputs_to_4_outputs(name, channels):
    model = create_model(name, in_channels=channels + 2, out_channels=channels, **SHAPE)
    out = model(torch.randn(2, 12, channels + 2, 32, 64))
    assert out.shape == (2, 4, channels, 32, 64)
    assert model.config["name"] == name and model.config["in_channels"] == channels + 2


def test_the_weather_transformer_has_about_1_6_million_parameters():
    model = create_model("weather_transformer", in_channels=1, out_channels=1, **SHAPE)
    assert 1.5e6 < sum(p.numel() for p in model.parameters()) < 1.75e6


@pytest.mark.parametrize("name,extra", [("weather_transformer", {"query_source": "history"}), ("transformer", {}),
                                        ("transformer_seq2seq", {}), ("transformer_seq2seq", {"query_source": "history"})])
def test_a_zero_initialised_output_layer_starts_at_persistence(name, extra):
    model = create_model(name, in_channels=3, out_channels=1, zero_init_output=True, **extra, **SHAPE)
    assert torch.count_nonzero(model(torch.randn(2, 12, 3, 32, 64))) == 0  # raw change 0: the forecast is the last input


def test_history_queries_reach_each_patch_history_directly():
    """A change in one patch's input moves that patch's forecast most: the history path is local."""
    torch.manual_seed(0)
    model = create_model("weather_transformer", in_channels=1, out_channels=1, query_source="history", dropout=0.0, **SHAPE)
    model.eval()
    x = torch.randn(1, 12, 1, 32, 64)
    bumped = x.clone()
    bumped[:, -1, :, :4, :8] += 1.0  # the first 4x8 patch
    change = (model(bumped) - model(x)).abs().mean(dim=(0, 1, 2))
    assert change[:4, :8].mean() > 2 * change[4:, 8:].mean()


def test_seq2seq_history_queries_carry_the_last_encoded_step_into_the_decoder():
    """With query_source=history each lead's query starts as its learned token plus the last step's encoding."""
    torch.manual_seed(0)
    model = create_model("transformer_seq2seq", in_channels=1, out_channels=1, query_source="history", dropout=0.0,
                         d_model=32, heads=4, encoder_layers=1, decoder_layers=1, **SHAPE).eval()
    seen = []
    model.transformer.decoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.randn(1, 12, 1, 32, 64)
    model(x)
    memory = model.transformer.encoder(model.proj(x.flatten(2)) + model.positions[:12])
    expected = model.queries + model.positions[12:] + memory[0, -1]
    assert torch.allclose(seen[0][0], expected, atol=1e-5)


@pytest.mark.parametrize("name", ["weather_transformer", "transformer_seq2seq"])
def test_an_unknown_query_source_is_a_named_error(name):
    with pytest.raises(ValueError, match="query_source must be one of"):
        create_model(name, in_channels=1, out_channels=1, query_source="last", **SHAPE)


def test_an_unknown_model_is_a_named_error():
    with pytest.raises(BenchError, match="unknown model 'convlstmm'"):
        create_model("convlstmm", **SHAPE)


def test_periodic_convolution_commutes_with_a_longitude_roll():
    conv = PeriodicConv2d(2, 3, 3)
    x = torch.randn(1, 2, 8, 16)
    assert torch.allclose(conv(torch.roll(x, 5, dims=-1)), torch.roll(conv(x), 5, dims=-1), atol=1e-6)


def test_unet_and_convlstm_cell_keep_the_grid():
    assert UNet(3, 4, base=8, depth=3)(torch.randn(2, 3, 32, 64)).shape == (2, 4, 32, 64)
    cell = ConvLSTMCell(3, 5)
    x = torch.randn(2, 3, 8, 16)
    h, c = cell(x, cell.init_state(x))
    assert h.shape == c.shape == (2, 5, 8, 16) and h.abs().max() <= 1


def test_ridge_in_the_dual_equals_scikit_learn_and_full_rank_factors_are_exact():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 80)).astype(np.float32), rng.standard_normal((30, 40)).astype(np.float32)
    xc, yc = torch.from_numpy(x - x.mean(0)), torch.from_numpy(y - y.mean(0))
    gram = xc @ xc.T
    coef = ridge_dual(gram, yc, alpha=3.0)
    reference = Ridge(alpha=3.0).fit(x, y).coef_.T
    np.testing.assert_allclose((xc.T @ coef).numpy(), reference, atol=1e-5)
    u, v, kept = low_rank_factors(xc, coef, gram, rank=40)
    np.testing.assert_allclose((u @ v.T).numpy(), reference, atol=1e-5)
    assert kept == pytest.approx(1.0, abs=1e-5)
    u8, v8, kept8 = low_rank_factors(xc, coef, gram, rank=8)
    assert u8.shape == (80, 8) and 0 < kept8 < 1


def test_year_fraction_spans_the_year():
    times = np.array(["2019-01-01T00", "2019-07-02T12", "2020-12-31T18"], dtype="datetime64[ns]")
    np.testing.assert_allclose(year_fraction(times), [0.0, 0.5, 1 - 6 / (366 * 24)], atol=1e-3)
