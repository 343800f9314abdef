"""Reference codecs in numpy: they give the codec board a scale (what simple compression costs) and
the tests real submissions without torch.

- ``CoarsenCodec(factor)``: area-weighted block means over ``factor x factor`` cells (the latent is the
  coarse field, physical units), decoded by bilinear interpolation between block centres, periodic
  in longitude, held constant beyond the outermost block centres in latitude. Compression factor².
- ``EofCodec(k)``: per channel, the ``k`` leading empirical orthogonal functions (area-weighted
  principal components) of the train split's z-scored anomalies from the train-mean field; the
  latent is the ``k`` principal-component coefficients per channel. Compression 2048 / k.

Both keep their own statistics (the EOF codec the ones it was fitted with), whatever data they are
scored on, like the trained models of the zoo.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.metrics import lat_cell_bounds
from bench.results import atomic_write_text
from bench.submission import SubmissionContext

EOF_FILE = "{channel}.npz"


def cell_areas(latitude: np.ndarray) -> np.ndarray:
    """Relative area of each latitude row's cells (sin of the edges), mean 1."""
    bounds = lat_cell_bounds(latitude)
    area = np.sin(bounds[1:]) - np.sin(bounds[:-1])
    return area / area.mean()


def interpolation_matrix(n_fine: int, factor: int, periodic: bool) -> np.ndarray:
    """(n_fine, n_fine // factor) weights that interpolate block-centre values linearly back to the fine points."""
    n_coarse = n_fine // factor
    position = (np.arange(n_fine) - (factor - 1) / 2) / factor  # fine point in coarse-index coordinates
    matrix = np.zeros((n_fine, n_coarse))
    if periodic:
        lower = np.floor(position).astype(int)
        frac = position - lower
        np.add.at(matrix, (np.arange(n_fine), lower % n_coarse), 1 - frac)
        np.add.at(matrix, (np.arange(n_fine), (lower + 1) % n_coarse), frac)
    else:
        position = np.clip(position, 0, n_coarse - 1)
        lower = np.minimum(np.floor(position).astype(int), n_coarse - 2)
        frac = position - lower
        np.add.at(matrix, (np.arange(n_fine), lower), 1 - frac)
        np.add.at(matrix, (np.arange(n_fine), lower + 1), frac)
    return matrix


class CoarsenCodec:
    """Block-mean coarsening by ``factor`` in both directions, bilinear (periodic in longitude) decoding."""

    def __init__(self, context: SubmissionContext, factor: int):
        n_lat, n_lon = context.task.grid.shape
        self.factor = factor
        self.channels = len(context.task.channels)
        self.latent_shape = (self.channels, n_lat // factor, n_lon // factor)
        area = cell_areas(context.task.grid.latitude.values).reshape(n_lat // factor, factor)
        self.row_weights = (area / area.sum(axis=1, keepdims=True)).astype(np.float64)  # area weights within a block
        self.up_lat = interpolation_matrix(n_lat, factor, periodic=False)
        self.up_lon = interpolation_matrix(n_lon, factor, periodic=True)

    def encode(self, fields: np.ndarray) -> np.ndarray:
        """(B, C, 32, 64) -> (B, C, 32/f, 64/f): area-weighted block means."""
        b, c, h, w = fields.shape
        f = self.factor
        blocks = fields.astype(np.float64).reshape(b, c, h // f, f, w // f, f)
        rows = (blocks * self.row_weights[None, None, :, :, None, None]).sum(axis=3)
        return rows.mean(axis=-1).astype(np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """(B, C, 32/f, 64/f) -> (B, C, 32, 64): bilinear between block centres."""
        fine = np.einsum("ij,bcjk,lk->bcil", self.up_lat, latents.astype(np.float64), self.up_lon, optimize=True)
        return fine.astype(np.float32)

    def describe(self) -> dict:
        """How the codec scales and where it works (the codec contract's describe())."""
        return {"input_scaling": "none (physical units)", "latent_scaling": {"kind": "none"}, "resize_to": None, "native_grid": True,
                "method": f"area-weighted {self.factor}x{self.factor} block mean; bilinear decoding, periodic in longitude"}

    def num_parameters(self) -> int:
        return 0


def fit_eofs(fields: np.ndarray, latitude: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Train-mean field, scale and the ``k`` leading area-weighted EOFs (2048 x k, orthonormal) of fields (N, 32, 64)."""
    x = fields.astype(np.float64)
    mean = x.mean(axis=0)
    scale = float(x.std())
    sqrt_area = np.sqrt(cell_areas(latitude))[:, None]
    anomalies = ((x - mean) / scale * sqrt_area).reshape(len(x), -1)
    # Eigenvectors of the 2048 x 2048 covariance: cheaper than an SVD of the N x 2048 matrix for N >> 2048.
    eigenvalues, eigenvectors = np.linalg.eigh(anomalies.T @ anomalies / len(x))
    order = np.argsort(eigenvalues)[::-1][:k]
    return {"mean": mean.astype(np.float32), "scale": np.float64(scale), "eofs": eigenvectors[:, order].astype(np.float32),
            "variance": eigenvalues[order].astype(np.float64), "total_variance": np.float64(eigenvalues.sum())}


def save_eofs(out_dir: Path, channel: str, eofs: dict[str, np.ndarray]) -> Path:
    """Write one channel's EOFs as ``OUT/CHANNEL.npz``, atomically (temp file, then rename)."""
    import os
    import tempfile

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / EOF_FILE.format(channel=channel)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=out_dir)
    os.close(fd)
    try:
        np.savez(tmp, **eofs)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def fit_eof_weights(data_dir: Path, out_dir: Path, k: int, tasks: list[str]) -> dict:
    """Fit every channel of ``tasks`` on the train split of a prepared data directory; write npz files and meta.json."""
    from bench.dataset import PreparedData
    from bench.task import load_task

    meta: dict = {"k": k, "channels": {}}
    for task_name in tasks:
        data = PreparedData(data_dir, load_task(task_name))
        positions = data.split_positions("train")
        for index, channel in enumerate(data.channels):
            if channel in meta["channels"]:
                continue
            fields = data.fields_at(positions)[:, index]
            eofs = fit_eofs(fields, data.task.grid.latitude.values, k)
            save_eofs(out_dir, channel, eofs)
            meta["channels"][channel] = {"explained_variance": float(eofs["variance"].sum() / eofs["total_variance"]),
                                         "n_train_fields": int(len(fields))}
        meta.update(data_fingerprint=data.fingerprint, source=data.manifest.source, split="train")
    atomic_write_text(Path(out_dir) / "meta.json", json.dumps(meta, indent=1) + "\n")
    return meta


class EofCodec:
    """The ``k`` leading EOFs per channel; the latent is (channel, k) principal-component coefficients."""

    def __init__(self, context: SubmissionContext, k: int, weights_dir: Path):
        from bench.errors import WeightsMissingError

        self.k = k
        self.channels = context.task.channel_keys
        self.latent_shape = (len(self.channels), k)
        self.sqrt_area = np.sqrt(cell_areas(context.task.grid.latitude.values))[:, None]
        self.mean, self.scale, self.eofs = [], [], []
        for channel in self.channels:
            path = Path(weights_dir) / EOF_FILE.format(channel=channel)
            if not path.is_file():
                raise WeightsMissingError(f"{path} is missing; fit it: python {Path(weights_dir).parent / 'fit.py'} --data PREPARED_DIR")
            with np.load(path) as stored:
                if stored["eofs"].shape[1] < k:
                    raise WeightsMissingError(f"{path} holds {stored['eofs'].shape[1]} EOFs, fewer than {k}; refit with more")
                self.mean.append(stored["mean"].astype(np.float64))
                self.scale.append(float(stored["scale"]))
                self.eofs.append(stored["eofs"][:, :k].astype(np.float64))

    def encode(self, fields: np.ndarray) -> np.ndarray:
        """(B, C, 32, 64) -> (B, C, k): projections of the area-weighted, scaled anomalies on the EOFs."""
        latents = [
            (((fields[:, i].astype(np.float64) - self.mean[i]) / self.scale[i] * self.sqrt_area).reshape(len(fields), -1)) @ self.eofs[i]
            for i in range(len(self.channels))
        ]
        return np.stack(latents, axis=1).astype(np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """(B, C, k) -> (B, C, 32, 64): the sum of EOFs weighted by their coefficients, back to physical units."""
        shape = self.mean[0].shape
        fields = [
            self.mean[i] + self.scale[i] * (latents[:, i].astype(np.float64) @ self.eofs[i].T).reshape((-1,) + shape) / self.sqrt_area
            for i in range(len(self.channels))
        ]
        return np.stack(fields, axis=1).astype(np.float32)

    def describe(self) -> dict:
        """How the codec scales and where it works (the codec contract's describe())."""
        return {"input_scaling": "anomaly from the train-mean field / train std, area-weighted", "latent_scaling": {"kind": "none"},
                "resize_to": None, "native_grid": True, "method": f"{self.k} leading EOFs per channel, fitted on the train split"}

    def num_parameters(self) -> int:
        return int(sum(e.size + m.size for e, m in zip(self.eofs, self.mean)))


def fit_eof_main(k: int, weights_dir: Path, tasks: list[str], argv: list[str] | None = None) -> None:
    """Command line of an EOF baseline's ``fit.py``: fit ``k`` EOFs per channel on ``--data``'s train split."""
    import argparse

    parser = argparse.ArgumentParser(description=f"Fit {k} EOFs per channel on the train split into {weights_dir}.")
    parser.add_argument("--data", required=True, type=Path, help="prepared data directory (bench data prepare)")
    args = parser.parse_args(argv)
    meta = fit_eof_weights(args.data, weights_dir, k=k, tasks=tasks)
    for channel, info in meta["channels"].items():
        print(f"{channel}: {info['explained_variance']:.5f} of the train-split variance in {k} EOFs")
