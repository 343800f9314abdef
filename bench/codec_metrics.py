"""Reconstruction metrics of the codec track: numpy kernels over fields (N, lat, lon) and a streaming scorer.

Spaces (every value is computed by the harness on the codec's reconstruction of a field):

- ``physical``: latitude-weighted RMSE, MAE, bias, maximum absolute error and the latitude-weighted,
  centred spatial correlation per field (time-mean), in the channel's units; plus two spectrum
  numbers (below), which are ratios and carry no units.
- ``normalized``: latitude-weighted RMSE and MAE of the z-scored fields (train-split mean and std),
  the forecasters' normalised space.
- ``unit_range``: the fields min-max scaled with the train-split range of each channel to [0, 1]
  (design document 000's image space, 0-255 / 255): latitude-weighted RMSE and MAE, and the image
  metrics PSNR and SSIM with ``data_range = 1``. PSNR and SSIM are computed per field, unweighted,
  exactly as scikit-image's ``peak_signal_noise_ratio`` / ``structural_similarity`` (7x7 uniform
  window, sample covariance, K1 0.01, K2 0.03) do on the same 2-D array, then averaged over fields.

Spectrum: the zonal power spectrum of each latitude row (one-sided, so that the sum over
wavenumbers k >= 1 is the variance along the circle), latitude-weighted over rows and averaged over
fields, for the truth ``P(k)`` and the reconstruction ``R(k)``. ``spectral_error`` is the mean over
k = 1..32 of ``|R(k) / P(k) - 1|`` (0 = every scale's variance kept; wavenumbers where the truth has
no variance, below 1e-12 of its largest, are left out); ``small_scale_power_ratio``
is ``sum R(k) / sum P(k)`` over k = 16..32 (wavelengths of 11.25-22.5 degrees of longitude): below
1 the codec smooths small scales away, above 1 it adds small-scale noise. This is how compression
benchmarks (e.g. ClimateBenchPress) report what a lossy codec does to small-scale variability.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from bench.metrics import lat_weights
from bench.normalization import NormStats
from bench.results import json_number

PHYSICAL, NORMALIZED, UNIT_RANGE = "physical", "normalized", "unit_range"
CODEC_SPACES = (PHYSICAL, NORMALIZED, UNIT_RANGE)
DATA_RANGE = 1.0  # PSNR/SSIM data range: fields are scaled to [0, 1] by the train-split min and max
SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03
MIN_MSE = 1e-20  # a perfect reconstruction scores 200 dB instead of infinity
SMALL_SCALES = (16, 32)  # zonal wavenumbers whose variance small_scale_power_ratio compares
SPECTRUM_BANDS = ((1, 3), (4, 7), (8, 15), (16, 32))


def spatial_mean(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Latitude-weighted mean over the last two axes (lat, lon); ``weights`` (lat,) have mean 1."""
    return (x * weights[:, None]).mean(axis=(-2, -1))


def psnr(truth: np.ndarray, reconstruction: np.ndarray, data_range: float = DATA_RANGE) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each field (N, lat, lon): 10 log10(range² / MSE), unweighted."""
    mse = ((truth.astype(np.float64) - reconstruction) ** 2).mean(axis=(-2, -1))
    return 10.0 * np.log10(data_range**2 / np.maximum(mse, MIN_MSE))


def ssim(truth: np.ndarray, reconstruction: np.ndarray, data_range: float = DATA_RANGE, win_size: int = SSIM_WINDOW) -> np.ndarray:
    """Mean structural similarity of each field (N, lat, lon), as scikit-image's defaults compute it.

    Written out (with scipy's uniform filter, as scikit-image does) so the harness needs no image
    library at run time; tests compare it with ``skimage.metrics.structural_similarity``.
    """
    x, y = truth.astype(np.float64), reconstruction.astype(np.float64)
    size = (1,) * (x.ndim - 2) + (win_size, win_size)
    n = win_size**2
    cov_norm = n / (n - 1)  # sample covariance, as scikit-image's default
    mx, my = ndimage.uniform_filter(x, size), ndimage.uniform_filter(y, size)
    vx = cov_norm * (ndimage.uniform_filter(x * x, size) - mx * mx)
    vy = cov_norm * (ndimage.uniform_filter(y * y, size) - my * my)
    vxy = cov_norm * (ndimage.uniform_filter(x * y, size) - mx * my)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return s[..., pad:-pad, pad:-pad].mean(axis=(-2, -1))


def spatial_correlation(truth: np.ndarray, reconstruction: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Latitude-weighted, centred (Pearson) correlation of each field pair; NaN for a constant field."""
    t = truth - spatial_mean(truth, weights)[..., None, None]
    r = reconstruction - spatial_mean(reconstruction, weights)[..., None, None]
    denominator = np.sqrt(spatial_mean(t * t, weights) * spatial_mean(r * r, weights))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, spatial_mean(t * r, weights) / np.where(denominator > 0, denominator, 1), np.nan)


def zonal_power_spectrum(fields: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One-sided zonal power per wavenumber k = 0..W/2 of each field (N, lat, lon), latitude-weighted over rows.

    Normalised so that the sum over k >= 1 equals the (weighted) variance along latitude circles.
    """
    width = fields.shape[-1]
    power = np.abs(np.fft.rfft(fields.astype(np.float64), axis=-1)) ** 2 / width**2
    power[..., 1 : (width + 1) // 2] *= 2  # one-sided: +k and -k, except k = 0 and the Nyquist k = W/2
    return (power * weights[:, None]).mean(axis=-2)


def spectrum_summary(truth_power: np.ndarray, reconstruction_power: np.ndarray) -> dict[str, float]:
    """spectral_error and small_scale_power_ratio from time-mean spectra (index = wavenumber)."""
    k = np.arange(len(truth_power))
    # Wavenumbers where the truth has (numerically) no variance have no relative error to speak of.
    resolved = (k >= 1) & (truth_power > 1e-12 * truth_power[1:].max(initial=0.0))
    error = float(np.mean(np.abs(reconstruction_power[resolved] / truth_power[resolved] - 1))) if resolved.any() else float("nan")
    small = (k >= SMALL_SCALES[0]) & (k <= SMALL_SCALES[1])
    total = truth_power[small].sum()
    ratio = float(reconstruction_power[small].sum() / total) if total > 0 else float("nan")
    return {"spectral_error": error, "small_scale_power_ratio": ratio}


class CodecScoreAccumulator:
    """Sums of every reconstruction metric over batches of fields (B, channel, lat, lon); aggregated once."""

    SUMS = ("mse", "ae", "bias", "corr", "z_mse", "z_ae", "u_mse", "u_ae", "psnr", "ssim")

    def __init__(self, channels: list[str], stats: NormStats, latitude: np.ndarray):
        self.channels = list(channels)
        self.stats = stats.subset(self.channels)
        self.weights = lat_weights(latitude).values
        n = len(self.channels)
        self.sums = {name: np.zeros(n) for name in self.SUMS}
        self.corr_count = np.zeros(n)
        self.max_abs = np.zeros(n)
        self.truth_power: np.ndarray | None = None
        self.reconstruction_power: np.ndarray | None = None
        self.squared_error_map: np.ndarray | None = None
        self.count = 0

    def _unit(self, x: np.ndarray) -> np.ndarray:
        """Fields scaled by the train-split [min, max] of each channel to [0, 1] (document 000's image space)."""
        return (self.stats.to_unit_range(x, channel_axis=1) + 1.0) / 2.0

    def add(self, truth: np.ndarray, reconstruction: np.ndarray) -> None:
        """Score one batch of fields and their reconstructions, both (B, channel, lat, lon), physical units."""
        t, r = truth.astype(np.float64), reconstruction.astype(np.float64)
        w = self.weights
        error = r - t
        self.sums["mse"] += spatial_mean(error**2, w).sum(axis=0)
        self.sums["ae"] += spatial_mean(np.abs(error), w).sum(axis=0)
        self.sums["bias"] += spatial_mean(error, w).sum(axis=0)
        self.max_abs = np.maximum(self.max_abs, np.abs(error).max(axis=(0, 2, 3)))
        corr = spatial_correlation(t, r, w)
        self.sums["corr"] += np.nansum(corr, axis=0)
        self.corr_count += np.isfinite(corr).sum(axis=0)
        z_error = self.stats.zscore(r, channel_axis=1) - self.stats.zscore(t, channel_axis=1)
        self.sums["z_mse"] += spatial_mean(z_error**2, w).sum(axis=0)
        self.sums["z_ae"] += spatial_mean(np.abs(z_error), w).sum(axis=0)
        ut, ur = self._unit(t), self._unit(r)
        self.sums["u_mse"] += spatial_mean((ur - ut) ** 2, w).sum(axis=0)
        self.sums["u_ae"] += spatial_mean(np.abs(ur - ut), w).sum(axis=0)
        self.sums["psnr"] += psnr(ut, ur).sum(axis=0)
        self.sums["ssim"] += ssim(ut, ur).sum(axis=0)
        truth_power = zonal_power_spectrum(t, w).sum(axis=0)
        reconstruction_power = zonal_power_spectrum(r, w).sum(axis=0)
        self.truth_power = truth_power if self.truth_power is None else self.truth_power + truth_power
        self.reconstruction_power = reconstruction_power if self.reconstruction_power is None else self.reconstruction_power + reconstruction_power
        squared = (error**2).sum(axis=0)
        self.squared_error_map = squared if self.squared_error_map is None else self.squared_error_map + squared
        self.count += len(t)

    def _mean(self, name: str) -> np.ndarray:
        return self.sums[name] / max(self.count, 1)

    def metric_table(self) -> dict[str, dict[str, dict[str, list[float | None]]]]:
        """metrics[channel][space][metric] = [value]: one value, a reconstruction has no lead time."""
        corr = np.where(self.corr_count > 0, self.sums["corr"] / np.maximum(self.corr_count, 1), np.nan)
        table = {}
        for i, channel in enumerate(self.channels):
            spectrum = spectrum_summary(self.truth_power[i], self.reconstruction_power[i])
            values = {
                PHYSICAL: {"rmse": np.sqrt(self._mean("mse")[i]), "mae": self._mean("ae")[i], "bias": self._mean("bias")[i],
                           "max_abs_error": self.max_abs[i], "correlation": corr[i], **spectrum},
                NORMALIZED: {"rmse": np.sqrt(self._mean("z_mse")[i]), "mae": self._mean("z_ae")[i]},
                UNIT_RANGE: {"rmse": np.sqrt(self._mean("u_mse")[i]), "mae": self._mean("u_ae")[i],
                             "psnr": self._mean("psnr")[i], "ssim": self._mean("ssim")[i]},
            }
            table[channel] = {space: {name: [json_number(v)] for name, v in metrics.items()} for space, metrics in values.items()}
        return table

    def spectra(self) -> dict[str, dict[str, list]]:
        """Time-mean zonal power spectra of truth and reconstruction per channel, and their ratio per band."""
        out = {}
        n = max(self.count, 1)
        for i, channel in enumerate(self.channels):
            truth, recon = self.truth_power[i] / n, self.reconstruction_power[i] / n
            bands = []
            for lo, hi in SPECTRUM_BANDS:
                total = truth[lo : hi + 1].sum()
                bands.append({"wavenumbers": [lo, hi], "power_ratio": json_number(recon[lo : hi + 1].sum() / total) if total > 0 else None})
            out[channel] = {"truth": [json_number(v, 5) for v in truth], "reconstruction": [json_number(v, 5) for v in recon], "bands": bands}
        return out

    def error_maps(self, units: dict[str, str]) -> dict[str, dict]:
        """Time-mean RMSE per grid point of each channel's reconstruction, physical units."""
        rmse = np.sqrt(self.squared_error_map / max(self.count, 1))
        return {
            channel: {"lead_hours": 0, "units": units[channel], "rmse": [[json_number(v, 4) for v in row] for row in rmse[i]]}
            for i, channel in enumerate(self.channels)
        }
