"""The codec track: how well an autoencoder ("codec") reconstructs the task's fields from its latents.

The contract (a codec submission: ``kind: code``, ``track: codec``, entry point e.g. ``model.py:build_codec``).
``build_codec(context)`` gets the same SubmissionContext as a forecaster (task, train-split
``context.stats``, its own directory) and returns an object with

- ``latent_shape``: one field's latent shape, without the batch, e.g. ``(4, 4, 8)``;
- ``encode(fields) -> latents``: fields ``(B, C, 32, 64)`` float32 in physical units, channels in the
  task's order -> ``(B, *latent_shape)`` floats (float32 by convention);
- ``decode(latents) -> fields``: ``(B, *latent_shape)`` -> ``(B, C, 32, 64)`` physical units;
- ``describe() -> dict``: at least ``input_scaling`` ("zscore", "minmax[-1,1]", ...), ``latent_scaling``,
  ``resize_to`` ([H, W] or None) and ``native_grid``.

The harness starts the submission twice, each in its own sandbox: an encoder process and a decoder
process. It feeds every field of the split (each 6-hourly time, in time order, in batches) to the
encoder, checks the latents (shape, dtype, finite), passes them itself to the decoder, checks the
reconstruction and scores it (bench.codec_metrics). The decoder sees only the latents: no memory,
temp file or process of the encoder is reachable from it. A wrong latent or output shape, NaN/inf,
a crash, a timeout each stop the run with a named error, and no results file is written.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from bench.codec_metrics import CodecScoreAccumulator
from bench.dataset import PreparedData
from bench.errors import DataError, MissingChannelsError, NonFiniteLatentError, NonFiniteOutputError, SubmissionError
from bench.normalization import NormStats
from bench.prepare import select_channel, verify_prepared
from bench.provenance import provenance
from bench.results import Results, store_name
from bench.sandbox import SandboxedCodec, SandboxLimits
from bench.store import open_store
from bench.submission import Submission, SubmissionContext
from bench.task import TaskSpec

FIELD_BYTES = 4  # compression is measured against the native float32 field


@dataclasses.dataclass
class FieldSource:
    """The fields a codec is scored on: their times, a reader for batches of them and their record in results."""

    times: pd.DatetimeIndex
    read: Callable[[np.ndarray], np.ndarray]  # positions into times -> (B, C, 32, 64) float32
    record: dict
    variant: str | None = None  # results file suffix; None for the benchmark's own test split
    blocked: tuple[Path, ...] = ()

    def subset(self, positions: np.ndarray) -> "FieldSource":
        """The same source restricted to ``positions`` (e.g. the few fields a comparison draws)."""
        positions = np.asarray(positions)
        return dataclasses.replace(self, times=self.times[positions], read=lambda batch: self.read(positions[batch]))

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """Positions of consecutive batches of ``size`` fields, in time order."""
        for start in range(0, len(self.times), size):
            yield np.arange(start, min(start + size, len(self.times)))


def split_fields(data: PreparedData, split: str) -> FieldSource:
    """Every field of ``split`` in a prepared data directory (the simulated board: the test year)."""
    positions = data.split_positions(split)
    if len(positions) == 0:
        raise SubmissionError(f"the data in {data.root} has no {split} fields")
    times = data.times[positions]
    record = {"fingerprint": data.fingerprint, "title": data.manifest.source_title, "store": store_name(data.manifest.source),
              "split": split, "n_fields": len(positions), "first_time": str(times[0]), "last_time": str(times[-1])}
    return FieldSource(times, lambda batch: data.fields_at(positions[batch]), record)


def store_variant(store: str) -> str:
    """A results-file suffix naming a store: its file name without extension, e.g. ``era5-sample-64x32``."""
    stem = Path(str(store).rstrip("/")).name.split(".")[0]
    return re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-") or "fields"


def store_fields(store: str, task: TaskSpec, stats: NormStats, statistics_from: str) -> FieldSource:
    """Every field of a WB2-schema store (e.g. the real ERA5 sample) in the task's channels.

    Raises DataError naming the missing channels when the store lacks some: a codec encodes all of
    its task's channels together, so it cannot be scored on part of them.
    """
    ds = open_store(store)
    missing = [c.key for c in task.channels if c.name not in ds or (c.level is not None and "level" not in ds[c.name].dims)]
    if missing:
        raise MissingChannelsError(
            f"{store} has no {', '.join(missing)} (it has {', '.join(sorted(map(str, ds.data_vars)))}); "
            f"{task.name}'s codec encodes all of {task.channel_keys} together, so it cannot be scored there: "
            "use a task whose channels the store has"
        )
    if float(ds["latitude"][0]) > float(ds["latitude"][-1]):
        ds = ds.isel(latitude=slice(None, None, -1))
    if not (task.grid.latitude.matches(ds["latitude"].values) and task.grid.longitude.matches(ds["longitude"].values)):
        raise DataError(f"{store} is not on the task's {task.grid.name} grid (latitude -87.1875..87.1875, longitude 0..354.375, step 5.625)")
    arrays = np.stack([select_channel(ds, c).transpose("time", "latitude", "longitude").values for c in task.channels], axis=1)
    arrays = arrays.astype(np.float32)
    if not np.isfinite(arrays).all():
        raise DataError(f"{store} holds NaN or infinite values in {task.channel_keys}; use complete fields")
    times = pd.DatetimeIndex(ds["time"].values)
    digest = hashlib.sha256(arrays.tobytes())
    digest.update(repr(sorted(stats.to_json()["stats"].items())).encode())  # the statistics are part of what is scored
    title = str(ds.attrs.get("title") or Path(str(store)).name)
    record = {"fingerprint": digest.hexdigest()[:16], "store": store_name(store), "title": title, "split": "all fields of the store",
              "n_fields": len(times), "first_time": str(times[0]), "last_time": str(times[-1]),
              "statistics": f"train split of {store_name(statistics_from)}"}
    return FieldSource(times, lambda batch: arrays[batch], record, variant=store_variant(store), blocked=(Path(store),) if "://" not in str(store) else ())


@contextmanager
def open_codec(submission: Submission, task: TaskSpec, stats: NormStats, blocked: list[Path], limits: SandboxLimits):
    """The encoder and the decoder of a codec submission, each running isolated in its own sandbox."""
    context = SubmissionContext(task=task, stats=stats, submission_dir=submission.root)
    with ExitStack() as stack:
        encoder = stack.enter_context(SandboxedCodec(submission, context, blocked, limits, "encoder"))
        decoder = stack.enter_context(SandboxedCodec(submission, context, blocked, limits, "decoder"))
        if decoder.latent_shape != encoder.latent_shape:
            raise SubmissionError(f"{submission.name}: latent_shape differs between two builds ({encoder.latent_shape} vs "
                                  f"{decoder.latent_shape}); declare one fixed latent shape")
        yield encoder, decoder


def check_latents(latents: np.ndarray, source: str) -> None:
    """Latents must be finite before the harness passes them on."""
    finite = np.isfinite(latents)
    if not finite.all():
        raise NonFiniteLatentError(f"{source}: latents have {int((~finite).sum())} NaN/inf values of {latents.size}; every latent value must be finite")


def check_reconstruction(fields: np.ndarray, source: str) -> np.ndarray:
    """A reconstruction must be finite; returned as float32 (scored as float32, like forecasts).

    No physical-range check: a codec that over- or undershoots is scored, not refused.
    """
    finite = np.isfinite(fields)
    if not finite.all():
        raise NonFiniteOutputError(f"{source}: reconstruction has {int((~finite).sum())} NaN/inf values of {fields.size}; every value must be finite")
    return fields.astype(np.float32, copy=False)


@dataclasses.dataclass
class CodecRun:
    """What one pass of the fields through a codec measured, besides the scores."""

    latent_shape: tuple[int, ...] = ()
    latent_dtype: str = "float32"
    description: dict = dataclasses.field(default_factory=dict)
    parameters: int | None = None
    hardware: dict = dataclasses.field(default_factory=dict)
    isolation: str = ""
    encode_s: float = 0.0
    decode_s: float = 0.0
    n_fields: int = 0


def run_codec(submission: Submission, task: TaskSpec, stats: NormStats, fields: FieldSource, blocked: list[Path],
              limits: SandboxLimits, batch_size: int, on_batch: Callable[[np.ndarray, np.ndarray], None] | None,
              progress: bool = False, limit: int | None = None) -> CodecRun:
    """Feed the fields through encoder -> harness -> decoder, batch by batch; ``on_batch(truth, reconstruction)`` scores them."""
    source = f"{submission.name} ({task.name})"
    run = CodecRun()
    bar = tqdm(total=len(fields.times) if limit is None else min(limit, len(fields.times)), desc=submission.name, unit="field",
               disable=not progress)
    with open_codec(submission, task, stats, blocked, limits) as (encoder, decoder):
        run.latent_shape, run.description = encoder.latent_shape, encoder.description
        run.parameters, run.hardware, run.isolation = encoder.parameters, encoder.hardware, encoder.isolation
        for batch in fields.batches(batch_size):
            if limit is not None:
                batch = batch[: max(limit - run.n_fields, 0)]
                if len(batch) == 0:
                    break
            truth = fields.read(batch)
            started = time.perf_counter()
            latents = encoder.encode(truth)
            run.encode_s += time.perf_counter() - started
            check_latents(latents, source)
            run.latent_dtype = latents.dtype.name
            started = time.perf_counter()
            reconstruction = check_reconstruction(decoder.decode(latents), source)
            run.decode_s += time.perf_counter() - started
            if on_batch is not None:
                on_batch(truth, reconstruction)
            run.n_fields += len(batch)
            bar.update(len(batch))
    bar.close()
    return run


def codec_record(run: CodecRun, task: TaskSpec, scorer: CodecScoreAccumulator) -> dict:
    """The results file's ``codec`` section: latent size, compression, throughput, description, spectra."""
    field_values = len(task.channels) * int(np.prod(task.grid.shape))
    latent_values = int(np.prod(run.latent_shape))
    latent_bytes = latent_values * np.dtype(run.latent_dtype).itemsize
    return {
        "latent_shape": list(run.latent_shape), "latent_dtype": run.latent_dtype, "latent_values": latent_values,
        "field_values": field_values,
        # Native float32 field bytes over latent bytes: below 1 the "compressed" form is larger than the field.
        "compression_ratio": round(field_values * FIELD_BYTES / latent_bytes, 6),
        "encode_fields_per_s": round(run.n_fields / run.encode_s, 3) if run.encode_s > 0 else None,
        "decode_fields_per_s": round(run.n_fields / run.decode_s, 3) if run.decode_s > 0 else None,
        "throughput_note": "harness wall clock around each sandboxed call, transfers included",
        "description": run.description,
        "spectra": scorer.spectra(),
    }


def score_codec(submission: Submission, task: TaskSpec, data_dir: Path, limits: SandboxLimits, batch_size: int = 64,
                split: str = "test", fields_store: str | None = None, progress: bool = False) -> tuple[Results, str | None]:
    """Score a codec on every field of ``split`` (or of ``fields_store``); returns the results and their file variant."""
    from bench.evaluate import blocked_paths

    manifest = submission.manifest
    if manifest.kind != "code":
        raise SubmissionError(f"{submission.name}: a codec submission must be kind: code (an encode/decode entry point)")
    if task.name not in manifest.tasks:
        raise SubmissionError(f"{submission.name} does not declare task {task.name!r} (its tasks: {list(manifest.tasks)})")
    started = time.perf_counter()
    data = PreparedData(data_dir, task)
    verify_prepared(data.root)
    if fields_store is None:
        fields = split_fields(data, split)
    else:
        fields = store_fields(fields_store, task, data.stats, data.manifest.source)
    blocked = blocked_paths(data) + list(fields.blocked)
    scorer = CodecScoreAccumulator(task.channel_keys, data.stats, task.grid.latitude.values)
    run = run_codec(submission, task, data.stats, fields, blocked, limits, batch_size, scorer.add, progress)
    card = manifest.model_card()
    card["parameters"] = run.parameters if run.parameters is not None else manifest.parameters
    units = {c.key: c.units for c in task.channels}
    results = Results(
        submission=card,
        task={"name": task.name, "fingerprint": task.fingerprint, "lead_hours": task.lead_hours,
              "channels": [{"key": c.key, "units": c.units} for c in task.channels]},
        data=fields.record,
        metrics=scorer.metric_table(),
        error_maps=scorer.error_maps(units),
        provenance=provenance(time.perf_counter() - started, run.hardware, run.isolation),
        codec=codec_record(run, task, scorer),
    )
    return results, fields.variant


def check_codec(submission: Submission, task: TaskSpec, data: PreparedData, limits: SandboxLimits, batch_size: int) -> int:
    """`bench validate` for a codec: build encoder and decoder in the sandbox, pass one batch through; returns fields checked."""
    from bench.evaluate import blocked_paths

    split = "validation" if len(data.split_positions("validation")) else "test"
    fields = split_fields(data, split)
    return run_codec(submission, task, data.stats, fields, blocked_paths(data), limits, batch_size, None, limit=batch_size).n_fields
