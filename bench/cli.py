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
        f"data: {results.data['title'] or results.data['source']} (fingerprint {results.data['fingerprint']})",
        f"{'channel':26s} {'metric':18s} " + " ".join(f"{'+' + str(h) + 'h':>10s}" for h in leads),
    ]
    rows = [("physical", "rmse"), ("normalized", "rmse"), ("physical", "mae"), ("physical", "bias"), ("physical", "acc")]
    for channel, spaces in results.metrics.items():
        for space, metric in rows:
            label = f"{metric.upper()} [{units[channel] if space == 'physical' and metric != 'acc' else ('z' if metric != 'acc' else '1')}]"
            values = " ".join(f"{v:10.4g}" if v is not None else f"{'—':>10s}" for v in spaces[space][metric])
            lines.append(f"{channel:26s} {label:18s} {values}")
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


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "tasks", multiple=True, help="Task(s) to score (default: the submission's tasks the data has).")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_RESULTS, show_default=True, help="Results directory.")
@run_options
@handle_errors
def evaluate(path: Path, tasks, out, data, batch_size, time_limit, memory_limit, quiet) -> None:
    """Score a submission on the test split and write one results JSON per task."""
    from bench.evaluate import evaluate as run_evaluation

    settings = _settings(data, batch_size, time_limit, memory_limit, quiet)
    for task_name in _tasks_for(path, tasks, settings.data_dir):
        results, written = run_evaluation(path, task_name, settings, out)
        click.echo(format_table(results))
        click.echo(f"wrote {written}\n")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "tasks", multiple=True, help="Task(s) to train (default: the submission's tasks the data has).")
@click.option("--data", default=None, help="Prepared dir, WB2 store (path or gs://), or 'sample' (default: $BENCH_DATA or sample).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (same recipe on both).")
@click.option("--epochs", type=int, default=None, help="Override the recipe's epochs.")
@click.option("--resume", is_flag=True, help="Continue from <PATH>/.train/<task>/last.pt.")
@click.option("--repack-int8", type=int, default=None, metavar="N",
              help="Do not train: re-store the finished weights with int8 rows for tensors of >= N entries, if validation changes < 0.1%.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@handle_errors
def train(path: Path, tasks, data, device, epochs, resume, repack_int8, quiet) -> None:
    """Train a submission that declares train.yaml: train split only, model selection on validation."""
    from bench.data_sources import resolve_data
    from bench.zoo.runner import repack_submission, train_submission

    data_dir = resolve_data(data, progress=not quiet)
    for task_name in _tasks_for(path, tasks, data_dir):
        if repack_int8:
            record = repack_submission(path, task_name, data_dir, repack_int8)
            click.echo(f"{task_name}: {record['format']} (validation score {record.get('validation_score_fp32', 0):.5f} -> "
                       f"{record.get('validation_score_stored', 0):.5f})")
            continue
        result = train_submission(path, task_name, data_dir, device, epochs, resume, not quiet)
        val = result.meta["validation"]["rmse"]
        summary = ", ".join(f"{c} {v[0]:.4g} / {v[-1]:.4g}" for c, v in val.items())
        click.echo(f"{task_name}: best epoch {result.meta['best_epoch']} of {result.meta['epochs_run']}, "
                   f"validation RMSE at 6 h / 24 h: {summary}; wrote {result.weights_dir}")


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
                f"{r.task['name']}: t2m RMSE@24h {r.metric('2m_temperature', 'rmse')[-1]} K ({r.provenance['evaluated_at'][:10]})"
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


def main() -> None:
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
