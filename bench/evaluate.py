"""The evaluation engine: feed a submission test inputs batch by batch, check what comes back,
score it against targets the submission never sees, and write one results file per task."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from bench.dataset import PreparedData, climatology_for, valid_times
from bench.errors import OutputShapeError, PredictionsFileError, SubmissionError
from bench.forecasts import ForecastWriter, PredictionsFile
from bench.output_checks import check_forecast
from bench.prepare import verify_prepared
from bench.provenance import provenance
from bench.results import Results, store_name, write_results
from bench.sandbox import SandboxedForecaster, SandboxLimits
from bench.scoring import ScoreAccumulator
from bench.submission import Submission, SubmissionContext, TrainFields, check_member, confined_path, load_submission, member_dir
from bench.task import TaskSpec, load_task
from bench.training_record import card_training, training_record


NO_CODE_RUN = "none: no code run (predictions file)"


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
    """How to run an evaluation: data directory, scoring chunk size, limits, split.

    ``batch_size`` init times are read and scored together; a code submission still gets them one
    at a time, in time order (no sample ever sees another's future).
    """

    data_dir: Path
    batch_size: int = 64
    limits: SandboxLimits = SandboxLimits()
    split: str = "test"
    progress: bool = True


def _batches(init_times: pd.DatetimeIndex, size: int) -> Iterator[pd.DatetimeIndex]:
    for start in range(0, len(init_times), size):
        yield init_times[start : start + size]


def blocked_paths(data: PreparedData) -> list[Path]:
    """Everything holding targets: the prepared directory and, if local, its source store."""
    paths = [data.root]
    source = Path(data.manifest.source)
    if "://" not in data.manifest.source and source.exists():
        paths.append(source)
    return paths


@contextmanager
def open_code_submission(submission: Submission, task: TaskSpec, data: PreparedData, limits: SandboxLimits, ensemble: bool = False):
    """A running, isolated code submission for ``task``; the harness reads the climatology for it."""
    train = TrainFields(*data.train_fields()) if "train_fields" in submission.manifest.needs else None
    context = SubmissionContext(task=task, stats=data.stats, submission_dir=submission.root, _climatology=data.climatology,
                                _train_fields=train)
    forecaster = SandboxedForecaster(submission, context, blocked_paths(data), limits, ensemble)
    try:
        yield forecaster
    finally:
        forecaster.close()


def join_forecasts(forecasts: list[np.ndarray], source: str) -> np.ndarray:
    """One array from per-init forecasts; an ensemble must keep its number of members."""
    sizes = {f.shape for f in forecasts}
    if len(sizes) > 1:
        raise OutputShapeError(f"{source}: forecasts change shape between init times ({sorted(sizes)}); keep one ensemble size")
    return np.concatenate(forecasts, axis=0)


class ForecastStream:
    """Forecasts of a submission for a list of init times, from its code or its predictions file."""

    def __init__(self, submission: Submission, task: TaskSpec, data: PreparedData, settings: EvaluationSettings):
        self.submission, self.task, self.data, self.settings = submission, task, data, settings
        self.ensemble = submission.manifest.track == "probabilistic"
        self.parameters = submission.manifest.parameters
        self.hardware: dict = {}
        self.isolation = NO_CODE_RUN

    def _check_predictions_file(self, predictions: PredictionsFile, init_times: pd.DatetimeIndex) -> None:
        name = self.submission.name
        missing = init_times.difference(predictions.init_index)
        if len(missing):
            raise PredictionsFileError(
                f"{name}: predictions lack {len(missing)} of {len(init_times)} {self.settings.split} init times "
                f"(first missing {missing[0]}); forecast every init time ({init_times[0]} .. {init_times[-1]}, 6-hourly)"
            )
        if predictions.init_index.has_duplicates:
            raise PredictionsFileError(f"{name}: predictions repeat init times; keep one forecast per init time")
        absent = [h for h, p in zip(self.task.lead_hours, predictions.lead_positions) if p < 0]
        if absent:
            raise PredictionsFileError(f"{name}: predictions lack lead times {absent} h; the task needs {self.task.lead_hours} h")
        if predictions.ensemble != self.ensemble:
            raise PredictionsFileError(
                f"{name}: track {self.submission.manifest.track!r} "
                + ("needs an ensemble dimension 'number'" if self.ensemble else "must not have an ensemble dimension; use track: probabilistic")
            )
        lat = predictions.dataset["latitude"].values
        lon = predictions.dataset["longitude"].values
        if not (self.task.grid.latitude.matches(lat) and self.task.grid.longitude.matches(lon)):
            raise PredictionsFileError(
                f"{name}: predictions are on a {len(lon)}x{len(lat)} (lon x lat) grid spanning latitude "
                f"{lat.min():g}..{lat.max():g}, longitude {lon.min():g}..{lon.max():g}; the task's {self.task.grid.name} "
                "grid is latitude -87.1875..87.1875, longitude 0..354.375, step 5.625"
            )

    def __call__(self, init_times: pd.DatetimeIndex) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray]]:
        manifest = self.submission.manifest
        if manifest.track == "codec":
            raise SubmissionError(f"{self.submission.name}: a codec-track submission encodes and decodes fields, it does not forecast; "
                                  "score it with bench evaluate (its codec track)")
        if self.task.name not in manifest.tasks:
            raise SubmissionError(f"{self.submission.name} does not declare task {self.task.name!r} (its tasks: {list(manifest.tasks)})")
        source = f"{self.submission.name} ({self.task.name})"
        bar = tqdm(total=len(init_times), desc=f"{self.submission.name}", unit="init", disable=not self.settings.progress)
        if manifest.kind == "mean":
            yield from self._mean(init_times, bar)
        elif manifest.kind == "predictions":
            raw = str(manifest.predictions[self.task.name])
            path = confined_path(self.submission.root, raw)
            if path is None:
                raise PredictionsFileError(f"{self.submission.name}: predictions file {raw[:200]!r} must be a path inside the submission directory")
            predictions = PredictionsFile(path, self.task)
            self._check_predictions_file(predictions, init_times)
            for batch in _batches(init_times, self.settings.batch_size):
                yield batch, check_forecast(predictions.forecast(batch), self.task, len(batch), self.ensemble, source)
                bar.update(len(batch))
        else:
            with open_code_submission(self.submission, self.task, self.data, self.settings.limits, self.ensemble) as model:
                self.parameters = model.parameters if model.parameters is not None else manifest.parameters
                self.hardware = model.hardware
                self.isolation = model.isolation
                for batch in _batches(init_times, self.settings.batch_size):
                    inputs = self.data.inputs(batch)
                    # Strictly causal: init i's inputs go out only after init i-1 is answered (nothing later is seen).
                    forecasts = [
                        check_forecast(model.predict(inputs[i : i + 1], batch.values[i : i + 1]), self.task, 1, self.ensemble, source)
                        for i in range(len(batch))
                    ]
                    yield batch, join_forecasts(forecasts, source)
                    bar.update(len(batch))
        bar.close()

    def member_streams(self) -> list["ForecastStream"]:
        """A mean's members, each its own stream (code runs in its own sandbox); nested means are refused."""
        streams = []
        for name in self.submission.manifest.members[self.task.name]:
            where = member_dir(self.submission.root, name)
            if where is None:
                raise SubmissionError(f"{self.submission.name}: member {name!r} is neither beside it nor under baselines/")
            member = load_submission(where)
            check_member(self.submission.name, member)
            quiet = dataclasses.replace(self.settings, progress=False)
            streams.append(ForecastStream(member, self.task, self.data, quiet))
        return streams

    def _mean(self, init_times: pd.DatetimeIndex, bar) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray]]:
        """The members' forecasts averaged with equal weights (float64 sum), then scored batch by batch.

        Members run one after another, each over the whole split in its own sandbox, which is closed
        before the next starts: members taking turns per batch kept idle sandboxes' thread pools
        spinning beside the busy one, several times slower on a 2-core machine."""
        streams = self.member_streams()
        total: np.ndarray | None = None
        for stream in streams:
            forecast = np.concatenate([f for _, f in stream(init_times)]).astype(np.float64)
            total = forecast if total is None else total + forecast
        mean = (total / len(streams)).astype(np.float32)
        self.parameters = sum(s.parameters or 0 for s in streams) or None
        self.hardware = streams[0].hardware
        self.isolation = streams[0].isolation
        for start in range(0, len(init_times), self.settings.batch_size):
            batch = init_times[start : start + self.settings.batch_size]
            yield batch, mean[start : start + len(batch)]
            bar.update(len(batch))


@dataclasses.dataclass
class StreamFacts:
    """What running the forecasts told us, beside the forecasts: parameters, hardware, isolation."""

    parameters: int | None
    hardware: dict
    isolation: str


def open_scoring(task: TaskSpec, settings: EvaluationSettings, verify: bool = True) -> tuple[PreparedData, pd.DatetimeIndex]:
    """The checked prepared data and the split's init times."""
    data = PreparedData(settings.data_dir, task)
    if verify:
        verify_prepared(data.root)
    init_times = data.init_times(settings.split)
    if len(init_times) == 0:
        raise SubmissionError(f"the data in {settings.data_dir} has no complete {settings.split} windows")
    return data, init_times


def accumulate(submission: Submission, task: TaskSpec, data: PreparedData, settings: EvaluationSettings,
               init_times: pd.DatetimeIndex) -> tuple[ScoreAccumulator, StreamFacts]:
    """Score ``init_times`` (all of a split, or a chunk of it) batch by batch; nothing is written."""
    stream = ForecastStream(submission, task, data, settings)
    accumulator = ScoreAccumulator(task, data.stats, stream.ensemble)
    for batch, forecast in stream(init_times):
        truth = data.targets(batch)
        clim = climatology_for(data.climatology, task, valid_times(task, batch))
        accumulator.add(batch.values, forecast, truth, clim)
    return accumulator, StreamFacts(stream.parameters, stream.hardware, stream.isolation)


def build_results(submission: Submission, task: TaskSpec, data: PreparedData, settings: EvaluationSettings,
                  init_times: pd.DatetimeIndex, accumulator: ScoreAccumulator, facts: StreamFacts,
                  wall_time_s: float, worker_hardware: dict | None = None) -> Results:
    """The results document of a finished evaluation."""
    card = submission.manifest.model_card()
    card["parameters"] = facts.parameters
    training = training_record(submission.root, task.name, task.fingerprint) if submission.manifest.kind == "code" else None
    if training is not None and not card.get("training"):
        card["training"] = card_training(training)
    ensemble = accumulator.ensemble_summary()
    if ensemble is not None:
        ensemble["seconds_per_init_time"] = round(wall_time_s / len(init_times), 4)
    return Results(
        submission=card,
        task={"name": task.name, "fingerprint": task.fingerprint, "lead_hours": task.lead_hours,
              "channels": [{"key": c.key, "units": c.units} for c in task.channels]},
        data={"fingerprint": data.fingerprint, "title": data.manifest.source_title, "store": store_name(data.manifest.source),
              "climatology": data.manifest.climatology, "split": settings.split, "n_init_times": len(init_times),
              "first_init_time": str(init_times[0]), "last_init_time": str(init_times[-1])},
        metrics=accumulator.metric_table(),
        error_maps=accumulator.error_maps(),
        provenance=provenance(wall_time_s, {**(worker_hardware or {}), **facts.hardware}, facts.isolation),
        training=training,
        ensemble=ensemble,
    )


def score(submission: Submission, task: TaskSpec, settings: EvaluationSettings) -> Results:
    """Score a submission on one task; nothing is written."""
    started = time.perf_counter()
    data, init_times = open_scoring(task, settings)
    accumulator, facts = accumulate(submission, task, data, settings, init_times)
    return build_results(submission, task, data, settings, init_times, accumulator, facts, time.perf_counter() - started)


def evaluate(submission_dir: Path | str, task_name: str, settings: EvaluationSettings, out_dir: Path,
             fields_store: str | None = None) -> tuple[Results, Path]:
    """Score and write the results file (only after every check passed).

    A ``track: codec`` submission is scored on reconstructions (bench.codec_eval): every field of the
    split, or of ``fields_store`` (e.g. the real ERA5 sample, with statistics from ``settings.data_dir``).
    """
    submission = load_submission(submission_dir)
    task = load_task(task_name)
    if submission.manifest.track == "codec":
        from bench.codec_eval import score_codec

        results, variant = score_codec(submission, task, settings.data_dir, settings.limits, settings.batch_size,
                                       settings.split, fields_store, settings.progress)
        return results, write_results(results, out_dir, variant)
    if fields_store is not None:
        raise SubmissionError(f"{submission.name}: --fields scores a codec on a store's fields; forecasters are scored on --data")
    results = score(submission, task, settings)
    return results, write_results(results, out_dir)


def predict(submission_dir: Path | str, task_name: str, settings: EvaluationSettings, out: Path) -> Path:
    """Run a code submission over every init time of the split and write a WB2-layout forecast zarr."""
    submission = load_submission(submission_dir)
    if submission.manifest.kind == "predictions":
        raise SubmissionError(f"{submission.name} is a predictions submission; bench predict runs code submissions (and means)")
    task = load_task(task_name)
    data = PreparedData(settings.data_dir, task)
    verify_prepared(data.root)
    init_times = data.init_times(settings.split)
    stream = ForecastStream(submission, task, data, settings)
    writer = ForecastWriter(Path(out), task)
    try:
        for batch, forecast in stream(init_times):
            writer.append(batch, forecast.astype(np.float32))
        return writer.commit({"submission": submission.name, "task": task.name, "task_fingerprint": task.fingerprint,
                              "data_fingerprint": data.fingerprint, "split": settings.split})
    except BaseException:
        writer.abort()
        raise
