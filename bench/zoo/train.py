"""The one training loop for every zoo model, and the closed-form path for ridge regression.

Samples come from the train split only; the epoch kept is the one with the best validation (2019)
latitude-weighted RMSE; the test year is never loaded (``bench.zoo.data``). Runs are seeded,
resumable from ``<submission>/.train/<task>/last.pt`` and write a per-epoch training log.

The loop is model-agnostic: the wrapped module names its samples (``sample_kind``: "windows" for
forecasters, "fields" for codecs), supplies its loss (``training_loss(batch, lat_weights) -> (loss,
logs)``) and its validation pair (``evaluation(batch) -> (prediction, target)``), and may finish
with ``after_training`` (a codec's train-split latent statistics).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from bench.errors import TrainingError
from bench.provenance import cpu_name, git_state
from bench.zoo.checkpoint import LOG, save_checkpoint
from bench.zoo.config import TrainConfig, parse_train_config
from bench.zoo.data import FieldSet, TrainingData, WindowSet
from bench.zoo.forecaster import Forecaster, lat_weights, static_maps, year_fraction
from bench.zoo.registry import create_model, model_family

Samples = WindowSet | FieldSet

WORK_DIR = ".train"


@dataclasses.dataclass
class TrainResult:
    """Where the weights went and the record written to meta.json."""

    weights_dir: Path
    meta: dict
    log: list[dict]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_model(config: TrainConfig, data: TrainingData, submission_dir: Path | None = None) -> tuple[torch.nn.Module, dict]:
    """The Forecaster (or Codec) for ``config`` on ``data``'s task, and the architecture config saved beside its weights."""
    if model_family(config.model) == "latent":
        from bench.zoo.latent import build_latent

        return build_latent(config, data, submission_dir)
    if model_family(config.model) != "forecaster":
        from bench.zoo.codec import build_codec

        return build_codec(config, data, submission_dir)
    task = data.task
    h, w = task.grid.shape
    lat = task.grid.latitude.values
    channels = len(task.channel_keys)
    model_args = {"in_steps": task.input_steps, "out_steps": task.output_steps,
                  "in_channels": channels + config.options.forcing_channels(), "out_channels": channels,
                  "height": h, "width": w, **config.model_args}
    net = create_model(config.model, **model_args)
    maps = static_maps(config.options, data.static, lat, w)
    arch = {"model": config.model, "model_args": model_args, "options": dataclasses.asdict(config.options)}
    return Forecaster(net, data.stats, config.options, maps), arch


def warm_start(model: Forecaster, arch: dict, config: TrainConfig, data: TrainingData, submission_dir: Path) -> dict | None:
    """Load ``config.init_from``'s weights into ``model`` (same architecture and task); its record for meta.json."""
    if not config.init_from:
        return None
    from bench.zoo.checkpoint import CONFIG, load_checkpoint

    source = Path(submission_dir) / config.init_from.format(task=data.task.name)
    previous, meta = load_checkpoint(source, data.task)
    if json.loads((source / CONFIG).read_text()) != json.loads(json.dumps(arch)):
        raise TrainingError(f"init_from {source} holds another architecture or options; warm starts need the same config.json")
    model.load_state_dict(previous.state_dict())
    log = json.loads((source / LOG).read_text()) if (source / LOG).is_file() else []
    return {"from": str(config.init_from), "epochs_before": int(meta.get("epochs_run", len(log))),
            "validation_score_before": meta.get("validation", {}).get("score"),
            "train_wall_time_s_before": meta.get("train_wall_time_s"), "train_config_before": meta.get("train_config"),
            "hardware_before": meta.get("hardware"), "warm_start_before": meta.get("warm_start"), "log": log}


def _autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def samples_of(data: TrainingData, kind: str, split: str) -> Samples:
    """The train or validation samples a module learns from: forecast windows or single fields."""
    if kind == "windows":
        return data.windows[split]
    if kind == "fields":
        return data.field_set(split)
    raise TrainingError(f"unknown sample kind {kind!r}; a trainable module sets sample_kind to 'windows' or 'fields'")


def _tensors(data: TrainingData, samples: Samples, index: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
    """A batch as tensors: (inputs, targets, input year fractions) of windows, or (fields, year fractions)."""
    if isinstance(samples, FieldSet):
        x, times = data.field_batch(samples, index)
        return torch.from_numpy(x).to(device), torch.from_numpy(year_fraction(times)).to(device)
    x, y, times = data.batch(samples, index)
    return (torch.from_numpy(x).to(device), torch.from_numpy(y).to(device),
            torch.from_numpy(year_fraction(times)).to(device))


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean squared error with latitude weights (mean 1) on the H axis."""
    return ((pred - target) ** 2 * weights[:, None]).mean()


@torch.no_grad()
def validate(model: torch.nn.Module, data: TrainingData, windows: Samples, device: torch.device,
             precision: str = "fp32", batch_size: int = 64) -> dict:
    """Latitude-weighted RMSE per channel and lead (physical and normalised) on ``windows``, and the score.

    A codec's reconstruction counts as one lead."""
    model.eval()
    w = torch.from_numpy(lat_weights(data.task.grid.latitude.values)).to(device)
    leads = data.task.output_steps if isinstance(windows, WindowSet) else 1
    sq = torch.zeros(leads, len(data.task.channel_keys), dtype=torch.float64, device=device)
    for start in range(0, len(windows), batch_size):
        batch = _tensors(data, windows, np.arange(start, min(start + batch_size, len(windows))), device)
        with _autocast(precision, device):
            pred, y = model.evaluation(batch)
        if pred.ndim == 4:
            pred, y = pred[:, None], y[:, None]
        sq += ((pred.float() - y) ** 2 * w[:, None]).mean(dim=(-1, -2)).sum(dim=0).double()
    rmse_norm = torch.sqrt(sq / len(windows)).cpu().numpy()  # (lead, channel)
    std = np.array([data.stats.stats[c].std for c in data.task.channel_keys])
    keys = data.task.channel_keys
    return {
        "score": float(rmse_norm.mean()),
        "rmse": {c: [float(v) for v in rmse_norm[:, i] * std[i]] for i, c in enumerate(keys)},
        "rmse_normalized": {c: [float(v) for v in rmse_norm[:, i]] for i, c in enumerate(keys)},
        "n_windows": len(windows),
    }


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """Linear warm-up then cosine decay to zero over the planned steps."""
    warmup = max(1, int(config.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _hardware(device: str) -> dict:
    """Where a model was trained (the card shows it): device, CPU, threads, torch, and the GPU's name on CUDA."""
    record = {"device": device, "machine": platform.machine(), "processor": cpu_name(),
              "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if device.startswith("cuda") and torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return record


def _meta(config: TrainConfig, data: TrainingData, model: torch.nn.Module, record: dict) -> dict:
    commit, dirty = git_state()
    return {
        "task": data.task.name, "task_fingerprint": data.task.fingerprint,
        "data_fingerprint": data.data_fingerprint, "data_title": data.source_title,
        "normalization": data.stats.to_json(),
        "trained_until": str(data.loaded_until), "train_windows": record.pop("train_windows"),
        "parameters": int(sum(p.numel() for p in model.net.parameters())),
        "train_config": config.to_json(), "train_config_fingerprint": config.fingerprint(),
        "hardware": _hardware(record.pop("device")),
        "git_commit": commit, "git_dirty": dirty, "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **({"codec": model.describe()} if hasattr(model, "describe") else {}),
        **record,
    }


STORAGE_TOLERANCE = 1e-3  # stored weights may move the validation score by at most 0.1% against fp32
INT4_PROBE_BUDGET = 5e-4  # summed single-tensor int4 costs allowed before the joint check on full validation


@dataclasses.dataclass(frozen=True)
class Storage:
    """How a checkpoint's weights are stored: int8 rows from a size up, and the tensors kept as int4 groups."""

    int8_min_elements: int | None = None
    int4: frozenset[str] = frozenset()


def _stored_score(model: torch.nn.Module, storage: Storage, data: TrainingData, val: Samples, device: torch.device) -> float:
    """Validation score of ``model`` after a round trip through ``storage``."""
    from bench.zoo.checkpoint import pack_state, unpack_state

    stored = copy.deepcopy(model)
    stored.load_state_dict(unpack_state(pack_state(model.state_dict(), storage.int8_min_elements, storage.int4)))
    return validate(stored, data, val, device)["score"]


def _int4_selection(model: torch.nn.Module, base: Storage, candidates: dict[str, int], data: TrainingData,
                    val: Samples, device: torch.device, score: float) -> tuple[frozenset[str], float | None, dict]:
    """The int4 tensors the validation score feels least, and that set's stored score (None if empty).

    All ``candidates`` (name -> entries) if that passes; else each is tried alone on every 4th validation
    sample, the cheapest per entry are kept while their summed cost stays under ``INT4_PROBE_BUDGET``, and
    the set is checked on full validation (halved until it passes)."""
    everything = frozenset(candidates)
    stored = _stored_score(model, dataclasses.replace(base, int4=everything), data, val, device)
    change = stored / score - 1
    if abs(change) <= STORAGE_TOLERANCE:
        return everything, stored, {"int4_everywhere_change": change}
    probe = val.strided(4)
    probe_base = _stored_score(model, base, data, probe, device)
    costs = {name: max(0.0, _stored_score(model, dataclasses.replace(base, int4=frozenset([name])), data, probe, device)
                       / probe_base - 1) for name in candidates}
    chosen, total, stored = [], 0.0, None
    for name in sorted(candidates, key=lambda n: costs[n] / candidates[n]):
        if total + costs[name] > INT4_PROBE_BUDGET:
            break
        chosen.append(name)
        total += costs[name]
    while chosen:
        stored = _stored_score(model, dataclasses.replace(base, int4=frozenset(chosen)), data, val, device)
        if abs(stored / score - 1) <= STORAGE_TOLERANCE:
            break
        chosen, stored = chosen[: len(chosen) // 2], None
    facts = {"int4_everywhere_change": change, "int4_refused_for": len(candidates) - len(chosen)}
    return frozenset(chosen), stored, facts


def storage_format(storage: Storage, state: dict[str, torch.Tensor]) -> str:
    """The card's words for a storage: which formats its tensors actually take (as ``pack_state`` decides)."""
    from bench.zoo.checkpoint import tensor_format

    kinds = [tensor_format(n, t, storage.int8_min_elements, storage.int4) for n, t in state.items()]
    int8, int4 = kinds.count("int8"), kinds.count("int4")
    parts = ["fp16"] + ([f"int8 rows ({int8} tensor{'s' * (int8 != 1)})"] if int8 else [])
    if int4:
        parts.append(f"int4 groups ({int4} tensor{'s' * (int4 != 1)})")
    return " + ".join(parts)


def storage_check(model: torch.nn.Module, data: TrainingData, val: Samples, device: torch.device, score: float,
                  int8_min_elements: int | None, int4_min_elements: int | None = None) -> tuple[dict, Storage]:
    """The smallest storage that loses nothing measurable (< 0.1% on the validation score); its record.

    Tried smallest first: int4 groups on tensors of >= ``int4_min_elements`` entries (all, else the ones
    validation feels least), then int8 rows on those of >= ``int8_min_elements``, then fp16."""
    from bench.zoo.checkpoint import storable

    record: dict = {"validation_score_fp32": score}
    state = model.state_dict()
    base, stored = Storage(), None  # the storage so far and its validation score (None: plain fp16)
    if int8_min_elements:
        int8_score = _stored_score(model, Storage(int8_min_elements), data, val, device)
        change = int8_score / score - 1
        record.update(int8_min_elements=int8_min_elements, int8_change=change)
        if abs(change) <= STORAGE_TOLERANCE:
            base, stored = Storage(int8_min_elements), int8_score
    if int4_min_elements:
        candidates = {n: t.numel() for n, t in state.items() if storable(n, t) and t.numel() >= int4_min_elements}
        chosen, chosen_score, facts = (_int4_selection(model, base, candidates, data, val, device, score) if candidates
                                       else (frozenset(), None, {}))
        record.update(int4_min_elements=int4_min_elements, int4_tensors=sorted(chosen), **facts)
        if chosen:
            base, stored = dataclasses.replace(base, int4=chosen), chosen_score
    record["format"] = storage_format(base, state)
    if int8_min_elements and not base.int8_min_elements:
        record["format"] += " (int8 changed the validation score by more than 0.1%)"
    record["validation_score_stored"] = stored
    if stored is not None:
        record["relative_change"] = stored / score - 1
    return record, base


def repack(weights_dir: Path, data: TrainingData, int8_min_elements: int | None, int4_min_elements: int | None = None,
           device: str = "cpu") -> dict:
    """Re-store a finished checkpoint with the smallest storage that loses nothing measurable (no retraining)."""
    from bench.zoo.checkpoint import CONFIG, load_checkpoint

    model, meta = load_checkpoint(weights_dir, data.task)
    stride = int(meta["train_config"].get("val_stride", 1))
    dev = torch.device(device)
    val = data.windows["validation"].strided(stride)
    before = validate(model.to(dev), data, val, dev)["score"]
    # The rule holds against the fp32 score measured when the model was trained (on the same validation
    # windows), not against the stored weights being re-stored: otherwise repeated re-storing compounds.
    score = float(meta.get("validation", {}).get("score") or before)
    record, storage = storage_check(model, data, val, dev, score, int8_min_elements, int4_min_elements)
    record["validation_score_before_repack"] = before
    if storage == Storage():
        return record
    record["repacked_from"] = meta.get("storage", {}).get("format")
    meta["storage"] = record
    meta["train_config"]["int8_min_elements"] = storage.int8_min_elements
    if int4_min_elements:
        meta["train_config"]["int4_min_elements"] = int4_min_elements
    meta["train_config_fingerprint"] = parse_train_config(meta["train_config"], str(weights_dir)).fingerprint()
    log = json.loads((Path(weights_dir) / LOG).read_text())
    config = json.loads((Path(weights_dir) / CONFIG).read_text())
    save_checkpoint(weights_dir, model.cpu(), config, meta, log, storage.int8_min_elements, storage.int4)
    return record


def _export(weights_dir: Path, model: torch.nn.Module, arch: dict, config: TrainConfig, data: TrainingData,
            record: dict, log: list[dict], device: torch.device) -> TrainResult:
    """Final validation in fp32 (every ``val_stride``-th validation sample), storage check, then the checkpoint."""
    model = model.float().to(device)
    val = samples_of(data, getattr(model, "sample_kind", "windows"), "validation").strided(config.val_stride)
    full = validate(model, data, val, device)
    record["validation"] = full
    record["storage"], storage = storage_check(model, data, val, device, full["score"], config.int8_min_elements,
                                               config.int4_min_elements)
    meta = _meta(config, data, model, record)
    save_checkpoint(weights_dir, model.cpu(), arch, meta, log, storage.int8_min_elements, storage.int4)
    return TrainResult(weights_dir, meta, log)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...],
               weights: torch.Tensor, config: TrainConfig, device: torch.device) -> float:
    """One optimiser step on ``batch`` (autocast, backward, gradient clipping); the loss as a float."""
    with _autocast(config.precision, device):
        loss, _ = model.training_loss(batch, weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return loss.item()


def _ema(model: torch.nn.Module, config: TrainConfig):
    """ema-pytorch's average of ``model``'s weights, updated after every optimiser step; None without ``ema_decay``."""
    if config.ema_decay is None:
        return None
    from ema_pytorch import EMA

    return EMA(model, beta=config.ema_decay, update_after_step=0, update_every=1, include_online_model=False)


def size_epochs(config: TrainConfig, data: TrainingData, minutes: float, device: str = "cpu",
                submission_dir: Path | None = None, cap: int | None = None, steps: int = 20) -> int:
    """Epochs of ``config`` that fit in ``minutes`` on ``device``: times ``steps`` training steps (after 5
    warm-up steps) on throw-away weights, adds 12% for validation; at least 1, at most ``cap`` (default: the
    recipe's epochs). Lets a cosine schedule finish inside a lease instead of being cut by ``max_minutes``."""
    dev = torch.device(device)
    model, _ = build_model(config, data, submission_dir or Path("."))
    model.to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-9)
    train = samples_of(data, model.sample_kind, "train").strided(config.window_stride)
    weights = torch.from_numpy(lat_weights(data.task.grid.latitude.values)).to(dev)
    size = config.batch_size
    started = 0.0
    for step in range(steps + 5):
        if step == 5:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            started = time.perf_counter()
        batch = _tensors(data, train, np.arange(step * size, (step + 1) * size) % len(train), dev)
        train_step(model, optimizer, batch, weights, config, dev)  # its loss.item() waits for the device
    per_epoch = (time.perf_counter() - started) / steps * math.ceil(len(train) / size) * 1.12
    return max(1, min(cap or config.epochs, int(60 * minutes / per_epoch)))


def fit(config: TrainConfig, data: TrainingData, weights_dir: Path, work_dir: Path, device: str = "cpu",
        resume: bool = False, progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
        submission_dir: Path | None = None) -> TrainResult:
    """Train ``config`` on ``data`` (train windows), keep the best validation epoch, write the checkpoint."""
    if config.trainer == "ridge":
        from bench.zoo.ridge import fit_ridge

        return fit_ridge(config, data, weights_dir, device, _export)
    dev = torch.device(device)
    seed_everything(config.seed)
    submission_dir = submission_dir or Path(weights_dir).parent.parent
    model, arch = build_model(config, data, submission_dir)
    warm = warm_start(model, arch, config, data, submission_dir)
    model.to(dev)
    trainable = model.net.trainable_parameters() if hasattr(model.net, "trainable_parameters") else model.parameters()
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    train = samples_of(data, model.sample_kind, "train").strided(config.window_stride)
    val = samples_of(data, model.sample_kind, "validation").strided(config.val_stride)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler = _scheduler(optimizer, config, config.epochs * steps_per_epoch)
    weights = torch.from_numpy(lat_weights(data.task.grid.latitude.values)).to(dev)
    if not config.options.lat_weighted_loss:
        weights = torch.ones_like(weights)
    ema = _ema(model, config)
    evaluated = ema.ema_model if ema is not None else model  # what is validated, selected and stored
    state = {"epoch": 0, "best_score": float("inf"), "best_state": None, "best_epoch": None, "log": [], "wall_s": 0.0}
    work_dir.mkdir(parents=True, exist_ok=True)
    last = work_dir / "last.pt"
    if resume and last.is_file():
        saved = torch.load(last, map_location=dev, weights_only=False)
        if saved["config_fingerprint"] != config.fingerprint():
            raise TrainingError(f"{last} was written by another recipe; delete it or train without --resume")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        state = saved["state"]
    stop_reason = "epochs"
    for epoch in range(state["epoch"], config.epochs):
        started = time.perf_counter()
        model.train()
        torch.manual_seed(config.seed + epoch)  # dropout and teacher forcing: same draws after a resume
        order = np.random.default_rng(config.seed + epoch).permutation(len(train))
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"{config.model} epoch {epoch + 1}/{config.epochs}", disable=not progress)
        for step in bar:
            batch = _tensors(data, train, order[step * config.batch_size:(step + 1) * config.batch_size], dev)
            losses.append(train_step(model, optimizer, batch, weights, config, dev))
            scheduler.step()
            if ema is not None:
                ema.update()
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        bar.close()
        result = validate(evaluated, data, val, dev, config.precision)
        # With EMA, the online weights are scored too, so the log isolates what the average buys.
        online = {"val_score_online": validate(model, data, val, dev, config.precision)["score"]} if ema is not None else {}
        state["wall_s"] += time.perf_counter() - started
        entry = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_score": result["score"], **online,
                 "val_rmse": result["rmse"], "lr": scheduler.get_last_lr()[0], "epoch_s": time.perf_counter() - started,
                 "wall_s": state["wall_s"]}
        state["log"].append(entry)
        if result["score"] < state["best_score"]:
            state.update(best_score=result["score"], best_epoch=epoch + 1,
                         best_state={k: v.detach().clone() for k, v in evaluated.state_dict().items()})
        state["epoch"] = epoch + 1
        tmp = last.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "state": state, "config_fingerprint": config.fingerprint(),
                    **({"ema": ema.state_dict()} if ema is not None else {})}, tmp)
        tmp.replace(last)
        if on_epoch:
            on_epoch(entry)
        print(json.dumps({k: entry[k] for k in ("epoch", "train_loss", "val_score", "epoch_s")}), flush=True)
        if epoch + 1 == config.epochs:  # every planned epoch ran: the schedule, not a stop rule, ended it
            break
        if config.patience and epoch + 1 - state["best_epoch"] >= config.patience:
            stop_reason = "early stopping"
            break
        if config.max_minutes and state["wall_s"] > 60 * config.max_minutes:
            stop_reason = "time budget"
            break
    if state["best_state"] is None:
        raise TrainingError("no epoch was trained; raise --epochs")
    model.load_state_dict(state["best_state"])
    extra = {}
    if hasattr(model, "after_training"):  # e.g. a codec's latent statistics, from the train split only
        fields = data.field_set("train")
        extra = model.after_training(data.fields[fields.positions], data.fields[data.field_set("validation").positions], dev)
    record = {**extra, "epochs_run": state["epoch"], "best_epoch": state["best_epoch"], "stopped_by": stop_reason,
              "train_wall_time_s": state["wall_s"], "train_windows": len(train), "device": str(dev)}
    log = state["log"]
    if warm is not None:  # one curve and one budget over both stages
        before = warm.pop("log")
        offset = warm["epochs_before"]
        before = [{**e, "stage": e.get("stage", 1)} for e in before]
        stage = max((e["stage"] for e in before), default=0) + 1
        log = before + [{**e, "epoch": e["epoch"] + offset, "stage": stage,
                         "wall_s": e["wall_s"] + (warm["train_wall_time_s_before"] or 0.0)} for e in log]
        record.update(epochs_run=offset + state["epoch"], best_epoch=offset + state["best_epoch"],
                      train_wall_time_s=(warm["train_wall_time_s_before"] or 0.0) + state["wall_s"], warm_start=warm)
    return _export(weights_dir, model, arch, config, data, record, log, dev)
