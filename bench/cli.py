"""The ``bench`` command line: data prepare, evaluate, predict, validate, list, leaderboard build."""
from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path

import click

from bench.errors import BenchError
from bench.results import Results, find_results
from bench.sandbox import SandboxLimits

DEFAULT_RESULTS = Path("results")


def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc)
    name = type(exc).__name__
    if isinstance(exc, BenchError):
        click.echo(f"error: {name}: {exc}", err=True)
        details = getattr(exc, "details", None)
        if details and debug:
            click.echo(details, err=True)
    else:
        message = " ".join(str(exc).split())[:500]
        click.echo(f"error: unexpected {name}: {message} (run `bench --debug ...` for the traceback)", err=True)
    sys.exit(2)


def _settings(data: str | None, batch_size: int, time_limit: float, memory_limit: float, quiet: bool):
    from bench.data_sources import resolve_data
    from bench.evaluate import EvaluationSettings

    return EvaluationSettings(
        data_dir=resolve_data(data, progress=not quiet), batch_size=batch_size,
        limits=SandboxLimits(time_limit_s=time_limit, memory_limit_mb=memory_limit), progress=not quiet,
    )


def run_options(func):
    """Options shared by commands that run a submission."""
    options = [
        click.option("--data", default=None, help="Prepared dir, WB2 store (path or gs://), or 'sample' (default: $BENCH_DATA or sample)."),
        click.option("--batch-size", default=64, show_default=True, help="Init times read and scored together (a code submission still gets one at a time, in time order)."),
        click.option("--time-limit", default=3600.0, show_default=True, help="Seconds a code submission may run."),
        click.option("--memory-limit", default=8192.0, show_default=True, help="MiB a code submission may use."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """A WeatherBench-style benchmark: 12 past 6-hourly fields -> the next 4."""
    ctx.obj = {"debug": debug}


@cli.group()
def data() -> None:
    """Prepare data stores."""


@data.command("prepare")
@click.option("--source", required=True, help="WB2-schema store: local zarr/netCDF path or gs:// URL.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory to write.")
@click.option("--task", "tasks", multiple=True, help="Task(s) to prepare for (default: every task the store supports).")
def data_prepare(source: str, out: Path, tasks: tuple[str, ...]) -> None:
    """Select, check and write a task's data with train-split statistics and climatology."""
    from bench.prepare import prepare

    manifest = prepare(source, out, list(tasks) or None)
    click.echo(f"wrote {out}: {len(manifest.channels)} channels, {manifest.n_times} times "
               f"({manifest.first_time} .. {manifest.last_time}), data fingerprint {manifest.data_fingerprint}")
    if manifest.gaps:
        click.echo(f"note: {len(manifest.gaps)} gap(s) in time; windows crossing them are skipped")


@data.command("pack")
@click.option("--task", "task_name", required=True, help="Task whose train + validation fields to pack.")
@click.option("--data", default=None, help="Prepared dir, WB2 store (path or gs://), or 'sample'.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output .npz file.")
@click.option("--part-mib", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Split a larger pack into parts of at most this many MiB (OUT-part<k>of<n>.npz), one per device call.")
def data_pack(task_name: str, data: str | None, out: Path, part_mib: float | None) -> None:
    """Write one task's train + validation fields (never the test year) to one compressed .npz for `bench train`
    on a machine without the store, e.g. a lent GPU; `bench train --data OUT` reads it, or all its parts."""
    from bench.data_sources import resolve_data
    from bench.dataset import PreparedData
    from bench.task import load_task
    from bench.zoo.data import PACK_SUFFIX, save_training_pack

    if not str(out).endswith(PACK_SUFFIX):
        raise BenchError(f"--out {out} must end with {PACK_SUFFIX} (bench train recognises a training pack by it)")
    paths = save_training_pack(PreparedData(resolve_data(data), load_task(task_name)), out, part_mib)
    for path in paths:
        click.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB): train + validation fields of {task_name}")
    if len(paths) > 1:
        click.echo(f"{len(paths)} parts; `bench train ... --data {out}` reads them all from one folder")


@data.command("cut-sample")
@click.option("--source", required=True, help="The simulated benchmark store.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output netCDF (default: the shipped sample).")
def data_cut_sample(source: str, out: Path | None) -> None:
    """Cut the embedded quick-start sample (<= 5 MB) from the simulated store."""
    from bench.embedded_sample import SAMPLE_FILE, cut_sample

    path = cut_sample(source, out or SAMPLE_FILE)
    click.echo(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB)")


def _tasks_for(submission_dir: Path, tasks: tuple[str, ...], data_dir: Path) -> list[str]:
    """Explicit tasks, else the submission's tasks that the data was prepared for."""
    from bench.prepare import PreparedManifest
    from bench.submission import load_submission

    if tasks:
        return list(tasks)
    declared = load_submission(submission_dir).manifest.tasks
    prepared = PreparedManifest.read(data_dir / "manifest.json").task_fingerprints
    usable = [t for t in declared if t in prepared]
    if not usable:
        raise BenchError(f"the data in {data_dir} supports {sorted(prepared)}, none of the submission's tasks {list(declared)}")
    return usable


def format_table(results: Results) -> str:
    """RMSE (physical and normalized), MAE, bias and ACC per lead for every channel."""
    leads = results.task["lead_hours"]
    units = {c["key"]: c["units"] for c in results.task["channels"]}
    lines = [
        f"{results.submission['name']} on {results.task['name']} (task {results.task['fingerprint']}) — "
        f"{results.data['n_init_times']} {results.data['split']} init times",
        f"data: {results.data['title'] or results.data.get('store') or results.data.get('source')} (fingerprint {results.data['fingerprint']})",
        f"{'channel':26s} {'metric':18s} " + " ".join(f"{'+' + str(h) + 'h':>10s}" for h in leads),
    ]
    rows = [("physical", "rmse"), ("normalized", "rmse"), ("physical", "mae"), ("physical", "bias"), ("physical", "acc"),
            ("physical", "crps"), ("physical", "spread"), ("physical", "spread_skill")]
    unitless = ("acc", "spread_skill")
    for channel, spaces in results.metrics.items():
        for space, metric in rows:
            if metric not in spaces[space]:
                continue  # CRPS, spread and spread/skill: ensembles only
            label = f"{metric.upper()} [{units[channel] if space == 'physical' and metric not in unitless else ('z' if metric not in unitless else '1')}]"
            values = " ".join(f"{v:10.4g}" if v is not None else f"{'—':>10s}" for v in spaces[space][metric])
            lines.append(f"{channel:26s} {label:18s} {values}")
    if results.ensemble:
        lines.append(f"ensemble: {results.ensemble['members']} members; spread/skill corrected by "
                     f"{results.ensemble['spread_skill_correction']}; {results.ensemble.get('seconds_per_init_time')} s per init time")
    return "\n".join(lines)


def _number(value: float | None, width: int, digits: int = 4) -> str:
    return f"{value:{width}.{digits}g}" if value is not None else f"{'—':>{width}s}"


def format_codec_table(results: Results) -> str:
    """Document 000's reconstruction table for a codec: per channel, physical, z-score and [0, 1]-scaled metrics."""
    codec = results.codec
    units = {c["key"]: c["units"] for c in results.task["channels"]}
    data = results.data
    ratio = codec["compression_ratio"]
    lines = [
        f"{results.submission['name']} on {results.task['name']} (task {results.task['fingerprint']}) — reconstruction of "
        f"{data['n_fields']} fields ({data['first_time']} .. {data['last_time']}, {data['split']})",
        f"data: {data['title'] or data['source']} (fingerprint {data['fingerprint']})"
        + (f"; statistics: {data['statistics']}" if data.get("statistics") else ""),
        f"latent {tuple(codec['latent_shape'])} {codec['latent_dtype']} = {codec['latent_values']} values for {codec['field_values']} "
        f"field values: compression {ratio:.4g}x vs float32" + (" (EXPANSION: the latent is larger than the field)" if ratio < 1 else "")
        + f"; encode {_number(codec['encode_fields_per_s'], 1)} fields/s, decode {_number(codec['decode_fields_per_s'], 1)} fields/s",
        f"codec: {', '.join(f'{k}={v}' for k, v in codec['description'].items())}"[:400],
        f"{'channel':34s} {'RMSE':>9s} {'MAE':>9s} {'bias':>9s} {'max|err|':>9s} {'corr':>8s} | {'z-RMSE':>8s} {'z-MAE':>8s} | "
        f"{'RMSE01':>8s} {'MAE01':>8s} {'PSNR dB':>8s} {'SSIM':>7s} | {'spec.err':>8s} {'small-sc':>8s}",
    ]
    for channel, spaces in results.metrics.items():
        ph, z, u = spaces["physical"], spaces["normalized"], spaces["unit_range"]
        lines.append(
            f"{channel + ' [' + units[channel] + ']':34s} {_number(ph['rmse'][0], 9)} {_number(ph['mae'][0], 9)} {_number(ph['bias'][0], 9)} "
            f"{_number(ph['max_abs_error'][0], 9)} {_number(ph['correlation'][0], 8, 5)} | {_number(z['rmse'][0], 8)} {_number(z['mae'][0], 8)} | "
            f"{_number(u['rmse'][0], 8)} {_number(u['mae'][0], 8)} {_number(u['psnr'][0], 8)} {_number(u['ssim'][0], 7)} | "
            f"{_number(ph['spectral_error'][0], 8)} {_number(ph['small_scale_power_ratio'][0], 8)}"
        )
    lines.append("RMSE/MAE latitude-weighted; z = train-split z-score; 01 = scaled to [0, 1] by the train-split min/max "
                 "(PSNR/SSIM there, data range 1); spec.err = mean |R(k)/P(k) - 1| of the zonal power spectrum, "
                 "small-sc = power kept at zonal wavenumbers 16-32")
    return "\n".join(lines)


def handle_errors(func):
    @functools.wraps(func)
    @click.pass_context
    def wrapper(ctx: click.Context, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # every failure is one line; --debug shows the traceback
            _fail(exc, ctx.obj.get("debug", False) if ctx.obj else False)

    return wrapper


SCHEDULER_HELP = ("Run on dask.distributed: a scheduler address (tcp://host:8786) or local:N for a LocalCluster of N workers "
                  "(the data and submissions must be readable at the same paths on every worker).")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "tasks", multiple=True, help="Task(s) to score (default: the submission's tasks the data has).")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_RESULTS, show_default=True, help="Results directory.")
@click.option("--fields", "fields_store", default=None,
              help="Codec track: score the reconstruction of every field of this WB2-schema store (e.g. the real ERA5 sample) "
                   "instead of the test split; normalisation statistics still come from --data. Results: OUT/TASK/NAME.STORE.json.")
@click.option("--scheduler", default=None, help=SCHEDULER_HELP)
@run_options
@handle_errors
def evaluate(path: Path, tasks, out, fields_store, scheduler, data, batch_size, time_limit, memory_limit, quiet) -> None:
    """Score a submission on the test split and write one results JSON per task (codecs: their reconstructions)."""
    from bench.errors import MissingChannelsError
    from bench.evaluate import evaluate as run_evaluation

    settings = _settings(data, batch_size, time_limit, memory_limit, quiet)
    task_names = _tasks_for(path, tasks, settings.data_dir)
    if scheduler is None or fields_store is not None:
        for task_name in task_names:
            try:
                results, written = run_evaluation(path, task_name, settings, out, fields_store)
            except MissingChannelsError as exc:
                if tasks:
                    raise
                click.echo(f"skipped {task_name}: {exc}\n")  # the store lacks this task's channels; the other tasks still run
                continue
            click.echo(format_codec_table(results) if results.is_codec else format_table(results))
            click.echo(f"wrote {written}\n")
        return
    from bench.distributed import EvaluationJob, open_runner
    from bench.results import write_results

    with open_runner(scheduler) as runner:
        for job, value, _ in runner.run([EvaluationJob(path, t, settings) for t in task_names]):
            if isinstance(value, BaseException):
                raise value
            click.echo(format_codec_table(value) if value.is_codec else format_table(value))
            click.echo(f"wrote {write_results(value, out)}\n")


@cli.command()
@click.option("--results", type=click.Path(path_type=Path), default=Path("leaderboard/results"), show_default=True,
              help="The committed results to re-derive.")
@click.option("--only", multiple=True, help="Only these submissions (by name; repeatable).")
@click.option("--task", "tasks", multiple=True, help="Only these tasks (repeatable).")
@click.option("--scheduler", default=None, help=SCHEDULER_HELP)
@click.option("--rewrite", is_flag=True, help="After a deliberate harness change: re-write the committed files that differ (and list what moved).")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="JSON report to write (default: reproduce.json beside the results folder).")
@click.option("--no-report", is_flag=True, help="Write no JSON report.")
@click.option("--train", "train_names", multiple=True, metavar="NAME",
              help="Also retrain baseline NAME with its recorded recipe (in a scratch copy) and report how far its scores land.")
@click.option("--train-epochs", type=int, default=None, help="Override the recipe's epochs for --train (a quicker, partial check).")
@click.option("--fields", "fields_stores", multiple=True, metavar="STORE",
              help="Stores that codec results of other boards were scored on (e.g. the real ERA5 sample); matched by file name.")
@click.option("--chunk-batches", type=int, default=8, show_default=True,
              help="With --scheduler: scoring batches per chunk of a predictions file.")
@click.option("--project-root", type=click.Path(path_type=Path), default=None,
              help="Where baselines/ and submissions/ live (default: this checkout).")
@run_options
@handle_errors
def reproduce(results, only, tasks, scheduler, rewrite, report, no_report, train_names, train_epochs, fields_stores, chunk_batches,
              project_root, data, batch_size, time_limit, memory_limit, quiet) -> None:
    """Re-derive every committed result from the submissions and the data store, and compare every number."""
    from bench.reproduce import (ReproduceOptions, difference_lines, main_exit_code, retrain_and_compare, run_reproduce,
                                 summary_table, write_report)

    settings = _settings(data, batch_size, time_limit, memory_limit, quiet)
    report_path = None if no_report else (report or Path(results).parent / "reproduce.json")
    options = ReproduceOptions(results_dir=Path(results), settings=settings, only=tuple(only), tasks=tuple(tasks),
                               scheduler=scheduler, rewrite=rewrite, report_path=report_path, chunk_batches=chunk_batches,
                               fields_stores=tuple(fields_stores),
                               command="bench " + " ".join(sys.argv[1:]), **({"project_root": project_root} if project_root else {}))
    entries, summary = run_reproduce(options, log=lambda line: click.echo(line, err=True))
    if train_names:
        summary["train"] = []
        for name in train_names:
            trained_tasks = list(tasks) or sorted({r.task["name"] for r in map(Results.read, find_results(results))
                                                   if r.submission["name"] == name})
            for task_name in trained_tasks:
                summary["train"].append(retrain_and_compare(name, task_name, settings, Path(results), train_epochs, not quiet))
        if report_path is not None:
            write_report(summary, report_path)
    click.echo(summary_table(entries))
    for line in difference_lines(entries):
        click.echo(line)
    for record in summary.get("train", []):
        click.echo(f"--train {record['submission']} on {record['task']}: {record['epochs']} epochs in {record['train_wall_time_s']} s; "
                   f"largest relative distance from the committed validation/test RMSE: {record['max_abs_relative_difference']:.3%} "
                   "(training is not bit-reproducible across hardware: measured, not checked)")
    counts = summary["counts"]
    click.echo(f"{counts['equal']} equal, {counts['different']} different, {counts['rewritten']} rewritten, {counts['failed']} failed "
               f"of {len(entries)} committed result(s) in {summary['wall_time_s']} s on {summary['scheduler']}"
               + (f"; report {report_path}" if report_path else ""))
    sys.exit(main_exit_code(entries))


@cli.command("compare-codecs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--task", default="era5-64x32-12to4-t2m", show_default=True, help="Task whose channels the codecs reconstruct.")
@click.option("--time", "times", multiple=True, help="Field time(s) to draw (nearest field; default: the middle of the test year).")
@click.option("--channel", "channels", multiple=True, help="Channel(s) to draw (default: the task's first).")
@click.option("--fields", "fields_store", default=None, help="Draw fields of this WB2-schema store (e.g. the real ERA5 sample) and use its board's results.")
@click.option("--results", type=click.Path(path_type=Path), default=Path("leaderboard/results"), show_default=True,
              help="Where the codecs' results files are (bench evaluate writes them).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("codec-comparison"), show_default=True, help="Folder for the PNGs and the table.")
@click.option("--data", default=None, help="Prepared dir, WB2 store (path or gs://), or 'sample' (default: $BENCH_DATA or sample).")
@handle_errors
def compare_codecs(paths, task, times, channels, fields_store, results, out, data) -> None:
    """Original, reconstructions and errors of codecs on the same fields as world maps; their table; error vs compression."""
    from bench.codec_compare import compare_codecs as run_compare
    from bench.data_sources import resolve_data

    comparison = run_compare(list(paths), task, resolve_data(data), out, results, list(times), list(channels), fields_store)
    click.echo(comparison.table)
    for path in comparison.files:
        click.echo(f"wrote {path}")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "tasks", multiple=True, help="Task(s) to train (default: the submission's tasks the data has).")
@click.option("--data", default=None, help="Prepared dir, WB2 store (path or gs://), or 'sample' (default: $BENCH_DATA or sample).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (same recipe on both).")
@click.option("--epochs", type=int, default=None, help="Override the recipe's epochs.")
@click.option("--resume", is_flag=True, help="Continue from <PATH>/.train/<task>/last.pt.")
@click.option("--budget-minutes", type=float, default=None,
              help="Time a few steps first and run as many epochs as fit (at most the recipe's), with max_minutes set to it.")
@click.option("--repack-int8", type=int, default=None, metavar="N",
              help="Do not train: re-store the finished weights with int8 rows for tensors of >= N entries, if validation changes < 0.1%.")
@click.option("--repack-int4", type=int, default=None, metavar="N",
              help="Do not train: re-store tensors of >= N entries as int4 groups (all, else those validation feels least; < 0.1% in all).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@handle_errors
def train(path: Path, tasks, data, device, epochs, resume, budget_minutes, repack_int8, repack_int4, quiet) -> None:
    """Train a submission that declares train.yaml: train split only, model selection on validation."""
    from bench.data_sources import resolve_data
    from bench.zoo.data import is_training_pack, read_pack_task
    from bench.zoo.runner import repack_submission, train_submission

    if is_training_pack(data):  # a training pack (bench data pack) carries one task's train + validation fields
        data_dir, task_names = Path(data), list(tasks) or [read_pack_task(Path(data))]
    else:
        data_dir = resolve_data(data, progress=not quiet)
        task_names = _tasks_for(path, tasks, data_dir)
    for task_name in task_names:
        if repack_int8 or repack_int4:
            record = repack_submission(path, task_name, data_dir, repack_int8, repack_int4)
            click.echo(f"{task_name}: {record['format']} (validation score {record.get('validation_score_fp32', 0):.5f} -> "
                       f"{record.get('validation_score_stored') or 0:.5f})")
            continue
        result = train_submission(path, task_name, data_dir, device, epochs, resume, not quiet, budget_minutes=budget_minutes)
        val = result.meta["validation"]["rmse"]
        summary = ", ".join(f"{c} {v[0]:.4g} / {v[-1]:.4g}" for c, v in val.items())
        click.echo(f"{task_name}: best epoch {result.meta['best_epoch']} of {result.meta['epochs_run']}, "
                   f"validation RMSE at 6 h / 24 h: {summary}; wrote {result.weights_dir}")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "tasks", multiple=True, help="Task(s) (default: the submission's tasks the data has).")
@click.option("--data", default=None, help="Prepared dir, WB2 store (path or gs://), or 'sample'.")
@click.option("--epochs", type=int, default=2, show_default=True, help="Epochs per variant (a short, equal budget).")
@click.option("--window-stride", type=int, default=8, show_default=True, help="Train on every n-th window.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@handle_errors
def ablate(path: Path, tasks, data, epochs, window_stride, quiet) -> None:
    """Retrain a recipe with each trainer option switched off (equal short budget); validation table."""
    from bench.data_sources import resolve_data
    from bench.zoo.ablation import run_ablation

    data_dir = resolve_data(data, progress=not quiet)
    for task_name in _tasks_for(path, tasks, data_dir):
        table = run_ablation(path, task_name, data_dir, not quiet, epochs=epochs, window_stride=window_stride)
        click.echo(f"{task_name} (validation 2019, {epochs} epoch(s), window stride {window_stride}):")
        for row in table["rows"]:
            scores = ", ".join(f"{c} {row['rmse_6h'][c]:.4g} / {row['rmse_24h'][c]:.4g}" for c in row["rmse_6h"])
            click.echo(f"  {row['variant']:<52} score {row['validation_score']:.5f}  RMSE 6 h / 24 h: {scores}")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Forecast zarr to write (WB2 layout).")
@click.option("--task", default=None, help="Task (default: the submission's first task the data has).")
@run_options
@handle_errors
def predict(path: Path, out: Path, task, data, batch_size, time_limit, memory_limit, quiet) -> None:
    """Run a code submission on every test init time and write its forecasts file."""
    from bench.evaluate import predict as run_predict

    settings = _settings(data, batch_size, time_limit, memory_limit, quiet)
    task_name = task or _tasks_for(path, (), settings.data_dir)[0]
    click.echo(f"wrote {run_predict(path, task_name, settings, out)}")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--no-data", is_flag=True, help="Only the static checks (no model run, no file scan).")
@run_options
@handle_errors
def validate(path: Path, no_data: bool, data, batch_size, time_limit, memory_limit, quiet) -> None:
    """Check a submission before scoring; every problem is named with its fix."""
    from bench.validation import validate as run_validation

    settings = None if no_data else _settings(data, batch_size, time_limit, memory_limit, True)
    report = run_validation(path, settings.data_dir if settings else None, settings)
    for line in report.checked:
        click.echo(f"ok: {line}")
    for line in report.problems:
        click.echo(f"problem: {line}")
    if not report.ok:
        click.echo(f"{path}: {len(report.problems)} problem(s)")
        sys.exit(1)
    click.echo(f"{path}: valid")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--results", type=click.Path(path_type=Path), default=Path("leaderboard/results"), show_default=True)
@handle_errors
def card(paths, results: Path) -> None:
    """Write each trained submission's README.md model card from its weights' meta and its results."""
    from bench.model_card import write_card

    for path in paths:
        click.echo(f"wrote {write_card(path, results)}")


@cli.command("select-members")
@click.argument("mean", type=click.Path(path_type=Path))
@click.argument("candidates", nargs=-1, type=click.Path(path_type=Path))
@click.option("--task", "task_name", required=True, help="Task to choose members for.")
@run_options
@handle_errors
def select_members_command(mean: Path, candidates, task_name, data, batch_size, time_limit, memory_limit, quiet) -> None:
    """Score every mean of CANDIDATES (singles too, as the reference) on the validation year; write MEAN/selection/TASK.json."""
    from bench.mean_selection import select_members, write_selection

    settings = _settings(data, batch_size, time_limit, memory_limit, quiet)
    rows = select_members(list(candidates), task_name, settings)
    from bench.dataset import PreparedData
    from bench.task import load_task

    written = write_selection(mean, task_name, rows, PreparedData(settings.data_dir, load_task(task_name)).fingerprint)
    for row in rows[:10]:
        rmse = "; ".join(f"{c} {' / '.join(f'{v:.3f}' for v in values)}" for c, values in row.rmse.items())
        click.echo(f"{row.score:.5f}  {'+'.join(row.members):60s} {rmse}")
    click.echo(f"wrote {written} ({len(rows)} subsets; validation 2019 only)")


@cli.command("list")
@click.option("--results", type=click.Path(path_type=Path), default=Path("leaderboard/results"), show_default=True)
@handle_errors
def list_submissions(results: Path) -> None:
    """Submissions (baselines/ and submissions/) and their latest results."""
    from bench.provenance import PROJECT_ROOT
    from bench.submission import load_submission

    latest: dict[str, list[Results]] = {}
    for path in find_results(results):
        try:
            r = Results.read(path)
        except BenchError:
            continue
        latest.setdefault(r.submission["name"], []).append(r)
    click.echo(f"{'name':24s} {'kind':12s} {'track':14s} {'latest results':s}")
    for folder in ("baselines", "submissions"):
        for manifest in sorted((PROJECT_ROOT / folder).glob("*/submission.yaml")):
            try:
                m = load_submission(manifest.parent).manifest
            except BenchError as exc:
                click.echo(f"{manifest.parent.name:24s} invalid: {exc}")
                continue
            found = latest.get(m.name, [])
            summary = "; ".join(
                (f"{r.task['name']}{' (' + (r.data.get('store') or r.data.get('source') or '').rstrip('/').split('/')[-1] + ')' if r.data.get('statistics') else ''}: "
                 f"t2m reconstruction RMSE {r.metric('2m_temperature', 'rmse')[0]} K at {r.codec['compression_ratio']:g}x"
                 if r.is_codec else f"{r.task['name']}: t2m RMSE@24h {r.metric('2m_temperature', 'rmse')[-1]} K")
                + f" ({r.provenance['evaluated_at'][:10]})"
                for r in sorted(found, key=lambda r: r.task["name"])
            ) or "none"
            click.echo(f"{m.name:24s} {m.kind:12s} {m.track:14s} {summary}")


@cli.group()
def leaderboard() -> None:
    """The static leaderboard site."""


@leaderboard.command("build")
@click.option("--results", type=click.Path(path_type=Path), default=Path("leaderboard/results"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("site"), show_default=True)
@handle_errors
def leaderboard_build(results: Path, out: Path) -> None:
    """Render every results JSON into a self-contained static site."""
    from bench.leaderboard.site import build_site

    report = build_site(results, out)
    for path, reason in report.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    click.echo(f"wrote {len(report.pages)} pages to {report.out_dir} (open {report.out_dir / 'index.html'})")


@leaderboard.command("refresh-training")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--results", type=click.Path(path_type=Path), default=Path("leaderboard/results"), show_default=True)
@handle_errors
def leaderboard_refresh_training(paths, results: Path) -> None:
    """Re-derive the training summary (curve, convergence) in each trained submission's results files from its
    weights, scores untouched; refuses where the weights are not the ones scored (run bench evaluate there)."""
    from bench.results import results_path
    from bench.submission import load_submission
    from bench.training_record import refresh_training

    for path in paths:
        submission = load_submission(path)
        for task_name in submission.manifest.tasks:
            target = results_path(results, task_name, submission.name)
            if target.is_file():
                click.echo(f"{target}: {refresh_training(target, submission.root)}")


def main() -> None:
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
