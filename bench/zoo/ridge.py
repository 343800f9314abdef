"""Closed-form ridge regression on flattened windows, solved in the dual and stored in low rank.

sklearn's Ridge would form the full (12*C*2048) x (4*C*2048) coefficient matrix (0.8 GB for one
channel, 20 GB for five); the dual solution W = X^T (X X^T + alpha I)^-1 Y needs only N x N, and a
randomised SVD of W (through X, never forming W) gives the stored rank-r factorisation.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from bench.zoo.config import TrainConfig
from bench.zoo.data import TrainingData, WindowSet
from bench.zoo.forecaster import Forecaster, lat_weights, year_fraction


@torch.no_grad()
def _design(model: Forecaster, data: TrainingData, windows: WindowSet, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened network inputs X (N, p) and raw targets Y (N, q), float32."""
    xs, ys = [], []
    for start in range(0, len(windows), chunk):
        index = np.arange(start, min(start + chunk, len(windows)))
        x, y, times = data.batch(windows, index)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        xs.append(model.inputs(x, torch.from_numpy(year_fraction(times))).flatten(1))
        ys.append(model.to_raw(x, y).flatten(1))
    return torch.cat(xs), torch.cat(ys)


@torch.no_grad()
def _val_score(model: Forecaster, data: TrainingData, predict_raw, windows: WindowSet) -> float:
    """Mean normalised lat-weighted RMSE of raw predictions ``predict_raw(X)`` on ``windows``."""
    w = torch.from_numpy(lat_weights(data.task.grid.latitude.values))
    sq, n = 0.0, 0
    for start in range(0, len(windows), 256):
        index = np.arange(start, min(start + 256, len(windows)))
        x, y, times = data.batch(windows, index)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        flat = model.inputs(x, torch.from_numpy(year_fraction(times))).flatten(1)
        pred = model.from_raw(x, predict_raw(flat).view(y.shape))
        sq = sq + ((pred - y) ** 2 * w[:, None]).mean(dim=(-1, -2)).sum(dim=0).double()
        n += len(index)
    return float(torch.sqrt(sq / n).mean())


def ridge_dual(gram: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Dual coefficients C = (G + alpha I)^-1 Y of ridge, G = X X^T on centred X (N, p), Y (N, q): W = X^T C."""
    eigval, eigvec = torch.linalg.eigh(gram.double())
    return (eigvec @ ((eigvec.T @ y.double()) / (eigval + alpha)[:, None])).float()


def low_rank_factors(x: torch.Tensor, coef: torch.Tensor, gram: torch.Tensor, rank: int, seed: int = 0,
                     power_iterations: int = 2) -> tuple[torch.Tensor, torch.Tensor, float]:
    """U (p, r), V (q, r) with U V^T the best rank-r approximation of W = x^T coef (randomised SVD,
    Halko et al. 2011, touching W only through x), and the fraction of W's energy kept."""
    gen = torch.Generator().manual_seed(seed)
    k = min(rank + 16, coef.shape[0], coef.shape[1])
    q = x.T @ (coef @ torch.randn(coef.shape[1], k, generator=gen))
    for _ in range(power_iterations):
        q, _ = torch.linalg.qr(q)
        q = x.T @ (coef @ (coef.T @ (x @ q)))
    q, _ = torch.linalg.qr(q)
    u_s, s, vt = torch.linalg.svd((x @ q).T @ coef, full_matrices=False)
    r = min(rank, len(s))
    total = float((coef.double() * (gram.double() @ coef.double())).sum())  # ||W||_F^2 = tr(C^T G C)
    return (q @ u_s[:, :r]) * s[:r], vt[:r].T, float((s[:r] ** 2).sum()) / max(total, 1e-30)


def fit_ridge(config: TrainConfig, data: TrainingData, weights_dir: Path, device: str, export) -> "TrainResult":
    """Exact ridge (alpha from model_args) on every ``window_stride``-th train window; rank-r storage."""
    from bench.zoo.train import build_model, seed_everything

    started = time.perf_counter()
    seed_everything(config.seed)
    model, arch = build_model(config, data)
    alpha, rank = float(config.model_args.get("alpha", 1.0)), int(config.model_args.get("rank", 64))
    train = data.windows["train"].strided(config.window_stride)
    x, y = _design(model, data, train)
    x_mean, y_mean = x.mean(0), y.mean(0)
    x -= x_mean
    y -= y_mean
    gram = x @ x.T
    coef = ridge_dual(gram, y, alpha)
    val = data.windows["validation"]
    full_score = _val_score(model, data, lambda f: ((f - x_mean) @ x.T) @ coef + y_mean, val)
    u, v, kept = low_rank_factors(x, coef, gram, rank, config.seed)
    net = model.net
    with torch.no_grad():
        net.u.zero_()
        net.v.zero_()
        net.u[:, : u.shape[1]] = u
        net.v[:, : v.shape[1]] = v
        net.x_mean.copy_(x_mean)
        net.y_mean.copy_(y_mean)
    low_score = _val_score(model, data, lambda f: ((f - x_mean) @ net.u) @ net.v.T + y_mean, val)
    wall = time.perf_counter() - started
    record = {"epochs_run": 1, "best_epoch": 1, "stopped_by": "closed form", "train_wall_time_s": wall,
              "train_windows": len(train), "device": "cpu",
              "ridge": {"alpha": alpha, "rank": rank, "validation_score_full_rank": full_score,
                        "validation_score_stored_rank": low_score,
                        "energy_kept_fraction": kept}}
    log = [{"epoch": 1, "train_loss": None, "val_score": low_score, "val_score_full_rank": full_score, "wall_s": wall}]
    return export(weights_dir, model, arch, config, data, record, log, torch.device("cpu"))
