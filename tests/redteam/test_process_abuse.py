"""Process abuse: fork bombs, daemons that outlive the run, signals to the harness, peeking at
other processes. Every process a model starts dies with the run; the harness stays untouchable."""
from __future__ import annotations

import os
import time

import psutil
import pytest

from bench.errors import SubmissionError
from bench.evaluate import evaluate
from hostile import sandbox_processes, T2M, hostile, hostile_model, requires_kernel_sandbox, settings_for, unchanged  # noqa: F401 (fixtures)

MARKER = "31337"


def sleepers() -> list[psutil.Process]:
    """Processes started by the daemon case (``sleep 31337``) still alive."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] and proc.info["cmdline"][-1:] == [MARKER]:
            found.append(proc)
    return found


@requires_kernel_sandbox
def test_a_daemon_started_by_the_model_dies_with_the_run(hostile, prepared, tmp_path, unchanged):
    code = f'''
import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{MARKER}"])
    os._exit(0)
'''
    submission = hostile(hostile_model(build=code))
    check = unchanged(submission, tmp_path / "untouched")
    evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    assert not sleepers(), "a process of the model outlived the run"
    assert sorted(p.name for p in (tmp_path / "results").rglob("*")) == [T2M, "probe.json"]
    check()


@requires_kernel_sandbox
def test_a_fork_bomb_is_capped_and_cleaned_up(hostile, prepared, tmp_path, unchanged):
    code = '''
import os
children = 0
try:
    while True:
        if os.fork() == 0:
            import time; time.sleep(600); os._exit(0)
        children += 1
except OSError:
    raise RuntimeError(f"capped after {children} processes")
'''
    submission = hostile(hostile_model(predict=code))
    check = unchanged(submission)
    started = time.monotonic()
    with pytest.raises(SubmissionError, match="capped after"):
        evaluate(submission, T2M, settings_for(prepared, time_limit_s=30, max_processes=64), tmp_path / "results")
    assert time.monotonic() - started < 60
    assert not sandbox_processes()
    check()


@requires_kernel_sandbox
def test_the_model_cannot_see_or_signal_the_harness(hostile, prepared, tmp_path, unchanged):
    harness = os.getpid()
    code = f'''
import os, signal
for pid in ({harness}, {os.getppid()}):
    try:
        os.kill(pid, 0)
        seen = open(f"/proc/{{pid}}/cmdline", "rb").read()
        if b"pytest" in seen:
            raise RuntimeError(f"SEES-HARNESS {{pid}}")
    except (ProcessLookupError, PermissionError, FileNotFoundError):
        pass
pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
for pid in pids:
    try:
        if b"pytest" in open(f"/proc/{{pid}}/cmdline", "rb").read():
            raise RuntimeError("SEES-HARNESS in /proc")
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        pass
try:
    os.kill(-1, signal.SIGKILL)   # every process it may signal: only its own
except OSError:
    pass
'''
    submission = hostile(hostile_model(predict=code))
    check = unchanged(submission, tmp_path / "untouched")
    results, _ = evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")  # no SEES-HARNESS error
    assert psutil.Process(harness).is_running()
    assert results.provenance["isolation"].startswith("landlock+namespaces")
    check()


def test_a_model_that_will_not_exit_is_killed_at_close(hostile, prepared, tmp_path, unchanged):
    code = '''
import atexit, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
atexit.register(lambda: time.sleep(600))
'''
    submission = hostile(hostile_model(build=code))
    check = unchanged(submission, tmp_path / "untouched")
    started = time.monotonic()
    evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    assert time.monotonic() - started < 40
    check()
    assert not sandbox_processes()
