"""Resource exhaustion: memory (in descendants too), files, CPU. The kernel enforces the limits;
the run ends with a named error within its time limit and leaves nothing behind."""
from __future__ import annotations

import time

import pytest

from bench.errors import SubmissionError, SubmissionMemoryError, SubmissionTimeoutError
from bench.evaluate import evaluate
from hostile import T2M, hostile, hostile_model, requires_kernel_sandbox, settings_for, unchanged  # noqa: F401 (fixtures)


def test_memory_of_a_child_process_counts(hostile, prepared, tmp_path, unchanged):
    code = '''
import subprocess, sys
done = subprocess.run([sys.executable, "-c", "x = bytearray(2**30); x[::4096] = b'1' * len(x[::4096]); print('ok')"],
                      capture_output=True)
if done.returncode == 0:
    raise RuntimeError("NO-LIMIT a child used 1 GiB")
'''
    submission = hostile(hostile_model(build=code))
    check = unchanged(submission)
    with pytest.raises(SubmissionMemoryError, match="over the 300 MiB"):
        evaluate(submission, T2M, settings_for(prepared, memory_limit_mb=300), tmp_path / "results")
    check()


def test_files_are_capped(hostile, prepared, tmp_path, unchanged):
    code = '''
import os, tempfile
path = os.path.join(tempfile.gettempdir(), "big")
try:
    with open(path, "wb") as handle:
        for _ in range(40):
            handle.write(b"0" * 2**20)
    raise RuntimeError("NO-LIMIT wrote 40 MiB")
except OSError:
    pass
'''
    submission = hostile(hostile_model(build=code))
    check = unchanged(submission, tmp_path / "untouched")
    evaluate(submission, T2M, settings_for(prepared, file_size_mb=8), tmp_path / "results")
    check()


def test_busy_threads_are_stopped_at_the_time_limit(hostile, prepared, tmp_path, unchanged):
    code = '''
import threading
def spin():
    while True:
        pass
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
spin()
'''
    submission = hostile(hostile_model(predict=code))
    check = unchanged(submission)
    started = time.monotonic()
    with pytest.raises(SubmissionTimeoutError, match="after the 4 s time limit"):
        evaluate(submission, T2M, settings_for(prepared, time_limit_s=4), tmp_path / "results")
    assert time.monotonic() - started < 30
    check()


@requires_kernel_sandbox
def test_the_temp_dir_is_private_and_removed(hostile, prepared, tmp_path, unchanged):
    code = '''
import os, tempfile, pathlib
home = pathlib.Path(tempfile.gettempdir())
(home / "keep").write_text("x")
os.chmod(home / "keep", 0)
(home / "locked").mkdir(); os.chmod(home / "locked", 0)
if home != pathlib.Path(os.environ["HOME"]):
    raise RuntimeError("HOME is not the private dir")
self.home = str(home)
'''
    submission = hostile(hostile_model(build=code))
    check = unchanged(submission, tmp_path / "untouched")
    import glob

    before = set(glob.glob("/tmp/bench-sandbox-*"))
    evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    assert set(glob.glob("/tmp/bench-sandbox-*")) <= before
    check()
