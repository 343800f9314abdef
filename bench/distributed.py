"""Run evaluations in this process or on a dask.distributed cluster, with identical results.

``--scheduler ADDRESS`` connects to a running scheduler (``tcp://host:8786``); ``local:N`` starts a
``LocalCluster`` of N single-threaded worker processes. Each evaluation of a code submission is one
task (its sandboxed model process is started by the worker, with the same limits); an evaluation of
a predictions file is split into chunks of consecutive init times (whole scoring batches), scored on
any worker and merged here in init-time order, so the numbers equal the single-process ones bit for
bit (``bench.scoring``). A worker that dies mid-task loses nothing but time: the scheduler runs the
task again elsewhere, and results files are written only here, after every part came back.
The prepared data directory and the submissions must be readable at the same paths on every worker.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.errors import BenchError, SchedulerError
from bench.evaluate import NO_CODE_RUN, EvaluationSettings, StreamFacts, accumulate, build_results, open_scoring, score
from bench.provenance import hardware
from bench.results import Results
from bench.scoring import ScoreAccumulator, ScoreState
from bench.submission import load_submission
from bench.task import load_task

LOCAL_PREFIX = "local:"
DEFAULT_CHUNK_BATCHES = 8  # a predictions-file chunk: 8 scoring batches (512 init times at --batch-size 64)


@dataclasses.dataclass(frozen=True)
class EvaluationJob:
    """One evaluation: a submission directory on one task (picklable: it travels to workers)."""

    submission_dir: Path
    task_name: str
    settings: EvaluationSettings
    fields_store: str | None = None  # codec track: score the reconstruction of this store's fields

    @property
    def label(self) -> str:
        return f"{Path(self.submission_dir).name} on {self.task_name}"


def quiet(settings: EvaluationSettings) -> EvaluationSettings:
    """Workers draw no per-evaluation progress bars (the client draws one over all jobs)."""
    return dataclasses.replace(settings, progress=False)


def in_this_process(func):
    """Run ``func`` with dask's synchronous scheduler: the lazily read zarr slabs of an evaluation must not
    be computed as sub-tasks on the cluster (a one-thread worker would wait on itself forever)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import dask

        with dask.config.set(scheduler="synchronous"):
            return func(*args, **kwargs)

    return wrapper


@in_this_process
def score_job(job: EvaluationJob) -> Results:
    """Score one whole evaluation (runs in this process or on a worker); codecs by the codec harness."""
    submission, task = load_submission(job.submission_dir), load_task(job.task_name)
    if submission.manifest.track == "codec":
        from bench.codec_eval import score_codec

        settings = job.settings
        results, _ = score_codec(submission, task, settings.data_dir, settings.limits, settings.batch_size,
                                 settings.split, job.fields_store, settings.progress)
        return results
    return score(submission, task, job.settings)


_VERIFIED: set[str] = set()


@in_this_process
def score_chunk(job: EvaluationJob, first: int, stop: int) -> tuple[ScoreState, dict]:
    """Score init times ``first:stop`` of a predictions-file evaluation; returns its mergeable state."""
    task = load_task(job.task_name)
    root = str(Path(job.settings.data_dir).resolve())
    data, init_times = open_scoring(task, job.settings, verify=root not in _VERIFIED)
    _VERIFIED.add(root)  # the integrity check reads the whole store: once per worker process
    accumulator, _ = accumulate(load_submission(job.submission_dir), task, data, job.settings, init_times[first:stop])
    return accumulator.state, hardware()


def chunk_bounds(n_init_times: int, batch_size: int, chunk_batches: int) -> list[tuple[int, int]]:
    """Consecutive [first, stop) ranges of whole scoring batches covering ``n_init_times``."""
    size = batch_size * max(1, chunk_batches)
    return [(start, min(start + size, n_init_times)) for start in range(0, n_init_times, size)]


def merge_chunks(job: EvaluationJob, parts: list[tuple[ScoreState, dict]], wall_time_s: float) -> Results:
    """The results of a chunked evaluation from its parts, merged in init-time order."""
    submission, task = load_submission(job.submission_dir), load_task(job.task_name)
    data, init_times = open_scoring(task, job.settings, verify=False)
    accumulator = ScoreAccumulator(task, data.stats, submission.manifest.track == "probabilistic")
    for state, _ in parts:
        accumulator.merge(state)
    facts = StreamFacts(submission.manifest.parameters, {}, NO_CODE_RUN)
    return build_results(submission, task, data, job.settings, init_times, accumulator, facts, wall_time_s, parts[0][1])


def is_chunkable(job: EvaluationJob) -> bool:
    """Predictions files are read, not run: their init times can be scored in parallel."""
    try:
        return load_submission(job.submission_dir).manifest.kind == "predictions"
    except BenchError:
        return False


Outcome = tuple[EvaluationJob, "Results | BaseException", float]


class LocalRunner:
    """Evaluations one after another in this process (the reference path)."""

    address = "this process"

    def run(self, jobs: list[EvaluationJob]) -> Iterator[Outcome]:
        for job in jobs:
            started = time.perf_counter()
            try:
                yield job, score_job(job), time.perf_counter() - started
            except Exception as exc:  # reported per job; the run goes on
                yield job, exc, time.perf_counter() - started


class DaskRunner:
    """Evaluations as tasks on a dask.distributed cluster; predictions files in init-time chunks."""

    def __init__(self, client, chunk_batches: int = DEFAULT_CHUNK_BATCHES, retries: int = 0):
        # A lost worker is no failure: the scheduler reruns its tasks elsewhere (distributed.scheduler.allowed-failures).
        # ``retries`` only re-runs a task that raised; a submission's error is deterministic, so none by default.
        self.client = client
        self.chunk_batches = chunk_batches
        self.retries = retries

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def _n_init_times(self, job: EvaluationJob) -> int:
        _, init_times = open_scoring(load_task(job.task_name), job.settings, verify=False)
        return len(init_times)

    def run(self, jobs: list[EvaluationJob]) -> Iterator[Outcome]:
        from distributed import as_completed

        started: dict[int, float] = {}
        pending = {}  # future -> (job index, chunk index or None)
        chunk_parts: dict[int, list] = {}
        jobs = list(jobs)
        for index, job in enumerate(jobs):
            job = dataclasses.replace(job, settings=quiet(job.settings))
            jobs[index] = job
            started[index] = time.perf_counter()
            try:
                bounds = chunk_bounds(self._n_init_times(job), job.settings.batch_size, self.chunk_batches) if is_chunkable(job) else []
            except Exception as exc:  # bad data or submission: reported like a failed evaluation
                yield job, exc, 0.0
                continue
            if len(bounds) > 1:
                chunk_parts[index] = [None] * len(bounds)
                for part, (first, stop) in enumerate(bounds):
                    future = self.client.submit(score_chunk, job, first, stop, pure=False, retries=self.retries,
                                                key=f"bench-chunk-{index}-{part}-{time.time_ns()}")
                    pending[future] = (index, part)
            else:
                future = self.client.submit(score_job, job, pure=False, retries=self.retries, key=f"bench-eval-{index}-{time.time_ns()}")
                pending[future] = (index, None)
        failed: set[int] = set()
        for future in as_completed(list(pending)):
            index, part = pending[future]
            job = jobs[index]
            if index in failed:
                continue
            try:
                value = future.result()
            except Exception as exc:
                failed.add(index)
                for other, (i, _) in pending.items():
                    if i == index:
                        other.cancel()
                yield job, exc, time.perf_counter() - started[index]
                continue
            if part is None:
                yield job, value, time.perf_counter() - started[index]
                continue
            chunk_parts[index][part] = value
            if all(p is not None for p in chunk_parts[index]):
                elapsed = time.perf_counter() - started[index]
                try:
                    yield job, merge_chunks(job, chunk_parts.pop(index), elapsed), elapsed
                except Exception as exc:
                    yield job, exc, elapsed


@contextmanager
def open_runner(scheduler: str | None, chunk_batches: int = DEFAULT_CHUNK_BATCHES):
    """A runner for ``--scheduler``: None -> this process; ``local:N`` -> a LocalCluster; else an address."""
    if not scheduler:
        yield LocalRunner()
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise SchedulerError("--scheduler needs dask.distributed; pip install distributed") from exc
    if scheduler.startswith(LOCAL_PREFIX):
        workers = scheduler[len(LOCAL_PREFIX):]
        if not workers.isdigit() or int(workers) < 1:
            raise SchedulerError(f"--scheduler {scheduler!r}: write local:N with N >= 1 workers, e.g. local:2")
        # One thread per worker: a worker runs one evaluation at a time (its model process has its own limits).
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        try:
            yield DaskRunner(client, chunk_batches)
        finally:
            client.close()
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"cannot reach the dask scheduler at {scheduler!r} ({type(exc).__name__}); "
                             "start one (dask scheduler / dask worker) or use --scheduler local:N") from exc
    try:
        yield DaskRunner(client, chunk_batches)
    finally:
        client.close()


def progress_over(outcomes: Iterator[Outcome], total: int, enabled: bool, describe: Callable[[EvaluationJob], str] | None = None):
    """Wrap outcomes in one progress bar over every evaluation."""
    from tqdm import tqdm

    with tqdm(total=total, desc="evaluations", unit="eval", disable=not enabled) as bar:
        for outcome in outcomes:
            bar.update(1)
            if describe is not None:
                bar.set_postfix_str(describe(outcome[0]), refresh=False)
            yield outcome

