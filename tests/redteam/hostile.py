"""Helpers of the red-team suite: hostile model sources, the harness-owned paths to watch, and
the one assertion every case makes: the named error, and nothing outside the model's temp dir changed."""
from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

import bench
from bench.evaluate import EvaluationSettings
from bench.sandbox import SandboxLimits, isolation_plan

T2M = "era5-64x32-12to4-t2m"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(bench.__file__).resolve().parent

requires_kernel_sandbox = pytest.mark.skipif(
    not (isolation_plan().full and isolation_plan().namespaces),
    reason="needs Landlock and unprivileged namespaces (Linux); elsewhere the run is labelled audit-hook only",
)

MODEL = '''import numpy as np
{top}

class Model:
    def __init__(self, context):
        self.context = context
{build}
    def predict(self, inputs, batch):
        forecast = np.repeat(inputs[:, -1:], 4, axis=1)
{predict}
        return forecast


def build_model(context):
    return Model(context)
'''


def hostile_model(predict: str = "", build: str = "", top: str = "") -> str:
    """A persistence model with hostile lines at module level, in ``__init__`` and in ``predict``."""

    def indent(text: str) -> str:
        return textwrap.indent(textwrap.dedent(text).strip(), " " * 8) + "\n" if text.strip() else ""

    return MODEL.format(top=textwrap.dedent(top).strip(), build=indent(build), predict=indent(predict))


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Size, mtime, mode and content digest of every file and folder under ``roots``."""
    state: dict[str, tuple] = {}
    for root in map(Path, roots):
        if not root.exists():
            state[str(root)] = ("absent",)
            continue
        for path in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
            if "__pycache__" in path.parts:
                continue
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and info.st_size < 2**22 else None
            state[str(path)] = (info.st_size, info.st_mtime_ns, info.st_mode, digest)
    return state


def watched(prepared: Path, store: Path, submission: Path, out: Path) -> list[Path]:
    """Everything a run must leave alone: data, store, results, the harness, the committed results, the submission."""
    return [prepared, store, submission, out, BENCH_DIR, PROJECT_ROOT / "leaderboard" / "results"]


def settings_for(prepared: Path, **limits) -> EvaluationSettings:
    """Evaluation settings with small limits (seconds, MiB) so hostile cases end fast."""
    return EvaluationSettings(data_dir=prepared, progress=False, limits=SandboxLimits(**{"time_limit_s": 60, **limits}))


@pytest.fixture()
def hostile(make_submission):
    """Write a hostile code submission from model source; returns its directory."""
    return lambda source, **kwargs: make_submission(source, **kwargs)


@pytest.fixture()
def unchanged(prepared, wb2_store, tmp_path):
    """Call with the submission dir before the run; call the result after it to assert nothing changed."""

    def start(submission: Path, out: Path | None = None):
        roots = watched(prepared, wb2_store, submission, out or tmp_path / "results")
        before = snapshot(*roots)

        def check() -> None:
            after = snapshot(*roots)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            assert not changed, changed

        return check

    return start


def _owned_by_another_harness(proc) -> bool:
    """A worker of some other run on the machine (a Python ancestor other than this test process, e.g. a
    `bench evaluate` or another test session); an escaped daemon is reparented to init and still counts as ours."""
    import os

    import psutil

    try:
        for parent in proc.parents():
            if parent.pid == os.getpid():
                return False
            head = parent.cmdline()[:2]
            if any("python" in os.path.basename(part) or os.path.basename(part) == "bench" for part in head):
                return True  # a harness (bench CLI or another test run) that is not this test process
    except psutil.Error:
        return False
    return False


def sandbox_processes(timeout: float = 5.0) -> list[str]:
    """Command lines of sandbox workers still alive after ``timeout`` s (a killed one may take a moment to vanish)."""
    import time

    import psutil

    end = time.monotonic() + timeout
    while True:
        alive = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "bench.sandbox_worker" in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE \
                    and not _owned_by_another_harness(proc):
                alive.append(f"{proc.pid}: {cmdline}")
        if not alive or time.monotonic() > end:
            return alive
        time.sleep(0.1)
