"""``bench train``: read a submission's recipe, load its training data, run the shared trainer."""
from __future__ import annotations

import warnings
from pathlib import Path

from bench.dataset import PreparedData
from bench.errors import TrainingError
from bench.provenance import cpu_has_native_bf16
from bench.submission import load_submission
from bench.task import load_task
from bench.zoo.config import TrainConfig, parse_train_config, read_train_config
from bench.zoo.data import TrainingData, is_training_pack, load_training_data, load_training_pack
from bench.zoo.serving import weights_dir
from bench.zoo.train import WORK_DIR, TrainResult, fit, size_epochs


def training_data(data: Path, task, static_names: tuple[str, ...]) -> TrainingData:
    """Train + validation fields from a prepared directory or a training pack (``bench data pack``)."""
    if is_training_pack(str(data)):
        return load_training_pack(Path(data), task, static_names)
    return load_training_data(PreparedData(data, task), static_names)


def repack_submission(path: Path, task_name: str, data_dir: Path, int8_min_elements: int | None,
                      int4_min_elements: int | None = None) -> dict:
    """Store a trained submission's weights in int4 groups / int8 rows where that changes validation by < 0.1%."""
    from bench.zoo.train import repack

    submission = load_submission(path)
    task = load_task(task_name)
    data = training_data(data_dir, task, ())
    return repack(weights_dir(submission.root, task_name), data, int8_min_elements, int4_min_elements)


def train_submission(path: Path, task_name: str, data_dir: Path, device: str = "cpu", epochs: int | None = None,
                     resume: bool = False, progress: bool = True, out: Path | None = None,
                     budget_minutes: float | None = None, **overrides) -> TrainResult:
    """Train the submission at ``path`` for ``task_name`` on prepared ``data_dir``; write ``weights/<task>/``."""
    submission = load_submission(path)
    if submission.manifest.kind != "code":
        raise TrainingError(f"{submission.name} is a predictions submission; only code submissions train")
    if task_name not in submission.manifest.tasks:
        raise TrainingError(f"{submission.name} does not declare task {task_name!r} (its tasks: {list(submission.manifest.tasks)})")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise TrainingError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    config = read_train_config(submission.root, task_name, epochs=epochs, **overrides)
    warn_emulated_bf16(config, device)
    task = load_task(task_name)
    data = training_data(data_dir, task, config.options.static_fields)
    if config.pretrain:  # first: stage 2 is built on the encoder it exports (also when its epochs are sized)
        pretrain_stage(config, submission.root, data, device, resume, progress, sized=bool(budget_minutes))
    if budget_minutes:  # size the epochs to the budget (the recipe's epochs are the cap), stop at it regardless
        sized = size_epochs(config, data, budget_minutes, device, submission.root)
        config = read_train_config(submission.root, task_name, **{**overrides, "epochs": sized, "max_minutes": budget_minutes})
        if progress:
            print(f"{task_name}: {sized} epoch(s) fit in {budget_minutes} min on {device}")
    return fit(config, data, out or weights_dir(submission.root, task_name), submission.root / WORK_DIR / task_name,
               device, resume, progress, submission_dir=submission.root)


def warn_emulated_bf16(config: TrainConfig, device: str) -> None:
    """A bf16 recipe on a CPU without native bf16 runs, but emulated and many times slower than fp32: say so."""
    if config.precision == "bf16" and device == "cpu" and cpu_has_native_bf16() is False:
        warnings.warn("precision bf16 on a CPU without AVX-512 BF16 or AMX: torch emulates it, many times slower "
                      "than fp32 (25 steps of a CNN took 15 minutes on an AVX2 EPYC); set precision: fp32 for this "
                      "task in train.yaml", RuntimeWarning, stacklevel=2)


PRETRAINED_DIR = "pretrained"


def pretrain_stage(config: TrainConfig, root: Path, data, device: str, resume: bool, progress: bool, sized: bool = False) -> Path:
    """Stage 1 of a two-stage codec: train ``config.pretrain`` into ``<root>/pretrained/<task>/`` (kept when
    already there) and export its encoder as a transformers directory ``.../encoder`` for stage 2.
    ``sized``: fit stage 1's epochs to its own ``max_minutes`` (as ``--budget-minutes`` does for stage 2)."""
    import os
    import shutil
    import tempfile

    from bench.zoo.checkpoint import META, load_codec

    out = root / PRETRAINED_DIR / data.task.name
    encoder_dir = out / "encoder"
    if not (out / META).is_file():
        stage1 = parse_train_config(config.pretrain, f"{root / 'train.yaml'} (pretrain)")
        if sized and stage1.max_minutes:
            epochs = size_epochs(stage1, data, stage1.max_minutes, device, root)
            stage1 = parse_train_config({**config.pretrain, "epochs": epochs}, f"{root / 'train.yaml'} (pretrain)")
            if progress:
                print(f"{data.task.name} (pretrain): {epochs} epoch(s) fit in {stage1.max_minutes} min on {device}")
        fit(stage1, data, out, root / WORK_DIR / data.task.name / "pretrain", device, resume, progress, submission_dir=root)
    if not (encoder_dir / "config.json").is_file():
        codec = load_codec(out, data.task)
        tmp = Path(tempfile.mkdtemp(prefix=".encoder.", dir=out))
        try:
            codec.net.save_encoder(tmp)
            os.replace(tmp, encoder_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return encoder_dir
