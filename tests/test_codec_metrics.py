"""Codec-track metrics: PSNR/SSIM against scikit-image on the same arrays, the spectrum on analytic
fields, and the streaming scorer against direct numpy formulas."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.codec_metrics import CodecScoreAccumulator, psnr, spatial_correlation, spectrum_summary, ssim, zonal_power_spectrum
from bench.metrics import lat_weights
from bench.normalization import ChannelStats, NormStats
from wb2_store import LATITUDE, LONGITUDE

W = lat_weights(LATITUDE).values


def _pair(seed: int = 0, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lon, lat = np.deg2rad(LONGITUDE), np.deg2rad(LATITUDE)
    truth = 0.5 + 0.3 * np.cos(lat)[:, None] * np.sin(3 * lon)[None, :] + 0.05 * rng.standard_normal((4, 32, 64))
    return truth, truth + noise * rng.standard_normal(truth.shape)


@pytest.mark.parametrize("noise", [0.001, 0.05, 0.3])
def test_psnr_and_ssim_equal_scikit_image_on_the_same_arrays(noise):
    truth, recon = _pair(noise=noise)
    ours_psnr, ours_ssim = psnr(truth, recon, 1.0), ssim(truth, recon, 1.0)
    for i in range(len(truth)):
        assert ours_psnr[i] == pytest.approx(peak_signal_noise_ratio(truth[i], recon[i], data_range=1.0), rel=1e-10)
        assert ours_ssim[i] == pytest.approx(structural_similarity(truth[i], recon[i], data_range=1.0), rel=1e-9, abs=1e-12)


def test_identical_fields_score_perfectly():
    truth, _ = _pair()
    assert np.all(ssim(truth, truth) == pytest.approx(1.0))
    assert np.all(psnr(truth, truth) == pytest.approx(200.0))  # MSE floored: no infinity in results
    np.testing.assert_allclose(spatial_correlation(truth, truth, W), 1.0)


def test_zonal_spectrum_of_a_pure_wave_is_its_variance_at_its_wavenumber():
    lon = np.deg2rad(LONGITUDE)
    amplitude, k = 3.0, 5
    field = np.broadcast_to(amplitude * np.cos(k * lon), (1, 32, 64))
    power = zonal_power_spectrum(field, W)[0]
    assert power[k] == pytest.approx(amplitude**2 / 2)  # the variance of A cos(kx)
    assert np.delete(power, k).max() < 1e-20
    nyquist = np.broadcast_to(np.cos(32 * lon), (1, 32, 64))  # (-1)^j: variance 1, all at k = 32
    assert zonal_power_spectrum(nyquist, W)[0][32] == pytest.approx(1.0)


def test_spectrum_summary_sees_small_scales_lost_or_added():
    lon = np.deg2rad(LONGITUDE)
    truth = np.broadcast_to(np.cos(2 * lon) + 0.5 * np.cos(20 * lon), (1, 32, 64))
    smooth = np.broadcast_to(np.cos(2 * lon), (1, 32, 64))
    noisy = np.broadcast_to(np.cos(2 * lon) + 1.0 * np.cos(20 * lon), (1, 32, 64))
    p = zonal_power_spectrum(truth, W)[0]
    lost = spectrum_summary(p, zonal_power_spectrum(smooth, W)[0])
    assert lost["small_scale_power_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert lost["spectral_error"] == pytest.approx(1.0 / 2)  # k=2 kept, k=20 lost, other wavenumbers have no truth power
    added = spectrum_summary(p, zonal_power_spectrum(noisy, W)[0])
    assert added["small_scale_power_ratio"] == pytest.approx(4.0)
    assert spectrum_summary(p, p) == {"spectral_error": 0.0, "small_scale_power_ratio": 1.0}


def test_accumulator_equals_direct_formulas_over_batches():
    stats = NormStats(("a", "b"), {"a": ChannelStats(280.0, 10.0, 240.0, 320.0, 1.0), "b": ChannelStats(0.0, 5.0, -20.0, 20.0, 1.0)})
    rng = np.random.default_rng(3)
    truth = np.stack([280 + 10 * rng.standard_normal((10, 32, 64)), 5 * rng.standard_normal((10, 32, 64))], axis=1)
    recon = truth + rng.standard_normal(truth.shape) * np.array([1.0, 0.5])[None, :, None, None] + 0.2
    scorer = CodecScoreAccumulator(["a", "b"], stats, LATITUDE)
    scorer.add(truth[:4], recon[:4])
    scorer.add(truth[4:], recon[4:])
    table = scorer.metric_table()
    err = recon - truth
    w = W[None, None, :, None]
    rmse = np.sqrt((err**2 * w).mean(axis=(2, 3)).mean(axis=0))
    np.testing.assert_allclose([table[c]["physical"]["rmse"][0] for c in "ab"], rmse, rtol=1e-6)
    np.testing.assert_allclose([table[c]["normalized"]["rmse"][0] for c in "ab"], rmse / [10.0, 5.0], rtol=1e-6)
    np.testing.assert_allclose([table[c]["unit_range"]["rmse"][0] for c in "ab"], rmse / [80.0, 40.0], rtol=1e-6)
    np.testing.assert_allclose([table[c]["physical"]["bias"][0] for c in "ab"], (err * w).mean(axis=(2, 3)).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose([table[c]["physical"]["max_abs_error"][0] for c in "ab"], np.abs(err).max(axis=(0, 2, 3)), rtol=1e-6)
    unit = (truth - np.array([240.0, -20.0])[None, :, None, None]) / np.array([80.0, 40.0])[None, :, None, None]
    unit_recon = (recon - np.array([240.0, -20.0])[None, :, None, None]) / np.array([80.0, 40.0])[None, :, None, None]
    for i, c in enumerate("ab"):
        expected = np.mean([peak_signal_noise_ratio(unit[n, i], unit_recon[n, i], data_range=1.0) for n in range(10)])
        assert table[c]["unit_range"]["psnr"][0] == pytest.approx(expected, rel=1e-6)
        expected = np.mean([structural_similarity(unit[n, i], unit_recon[n, i], data_range=1.0) for n in range(10)])
        assert table[c]["unit_range"]["ssim"][0] == pytest.approx(expected, rel=1e-6)
    assert set(scorer.spectra()["a"]) == {"truth", "reconstruction", "bands"}
    assert np.array(scorer.error_maps({"a": "K", "b": "m"})["a"]["rmse"]).shape == (32, 64)
