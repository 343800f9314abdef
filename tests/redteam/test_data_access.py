"""Data access through every layer: Python, raw system calls from C (ctypes), other programs,
symlinks, /proc, the network and the environment. The kernel refuses what the audit hook cannot see."""
from __future__ import annotations

import socket

import numpy as np
import pytest

from bench.errors import TargetAccessError
from bench.evaluate import evaluate
from hostile import T2M, hostile, hostile_model, requires_kernel_sandbox, settings_for, unchanged  # noqa: F401 (fixtures)

# Each probe raises RuntimeError("LEAK ...") if it got at the data; otherwise the model is persistence.
C_OPEN = '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for path in ({targets}):
    fd = libc.syscall(257, -100, path.encode(), os.O_RDONLY, 0)   # openat(AT_FDCWD, ...) straight to the kernel
    if fd >= 0:
        raise RuntimeError(f"LEAK opened {{path}}")
'''
OTHER_PROGRAM = '''
import subprocess
# The path is decoded by the shell, so the audit hook never sees it; only the kernel can say no.
out = subprocess.run(["/bin/sh", "-c", "cat $(echo {encoded} | base64 -d)/manifest.json"], capture_output=True)
if out.stdout:
    raise RuntimeError("LEAK through cat")
'''
SYMLINK = '''
import os, tempfile, ctypes
link = os.path.join(tempfile.gettempdir(), "innocent")
os.symlink({target!r}, link)
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall(257, -100, (link + "/manifest.json").encode(), os.O_RDONLY, 0) >= 0:
    raise RuntimeError("LEAK through a symlink")
'''
ENVIRONMENT = '''
import os
text = repr(dict(os.environ))
for needle in ({needles}):
    if needle in text:
        raise RuntimeError(f"LEAK environment names {{needle}}")
'''


@requires_kernel_sandbox
@pytest.mark.parametrize("where", ["build", "predict"])
def test_raw_system_calls_cannot_open_the_data(hostile, prepared, wb2_store, tmp_path, unchanged, where):
    targets = ", ".join(repr(str(p)) for p in (prepared / "manifest.json", prepared / "data.zarr" / ".zmetadata",
                                               prepared / "stats.json", wb2_store / ".zmetadata"))
    code = C_OPEN.format(targets=targets)
    submission = hostile(hostile_model(**{where: code}))
    check = unchanged(submission, tmp_path / "untouched")
    results, _ = evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    assert results.provenance["isolation"].startswith("landlock")
    check()


@requires_kernel_sandbox
def test_another_program_cannot_read_the_data(hostile, prepared, tmp_path, unchanged):
    import base64

    code = OTHER_PROGRAM.format(encoded=base64.b64encode(str(prepared).encode()).decode())
    submission = hostile(hostile_model(predict=code))
    check = unchanged(submission, tmp_path / "untouched")
    evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    check()


@requires_kernel_sandbox
def test_a_symlink_does_not_lead_to_the_data(hostile, prepared, tmp_path, unchanged):
    submission = hostile(hostile_model(build=SYMLINK.format(target=str(prepared))))
    check = unchanged(submission, tmp_path / "untouched")
    evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    check()


def test_the_environment_names_no_harness_path(hostile, prepared, tmp_path, unchanged, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(prepared))
    needles = ", ".join(repr(n) for n in (str(prepared), "PYTEST", "BENCH_DATA", "VIRTUAL_ENV"))
    submission = hostile(hostile_model(build=ENVIRONMENT.format(needles=needles)))
    check = unchanged(submission, tmp_path / "untouched")
    evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    check()


@requires_kernel_sandbox
def test_no_network(hostile, prepared, tmp_path, unchanged):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    code = f'''
import socket
for family, address in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_INET, ("8.8.8.8", 53))):
    try:
        socket.create_connection(address, timeout=2).close()
        raise RuntimeError(f"LEAK connected to {{address}}")
    except OSError:
        pass
'''
    submission = hostile(hostile_model(predict=code))
    check = unchanged(submission, tmp_path / "untouched")
    try:
        evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    finally:
        listener.close()
    check()


def test_python_level_reads_are_named(hostile, prepared, tmp_path, unchanged):
    code = f'''
try:
    np.load({str(prepared / "data.zarr" / "2m_temperature" / "0")!r})
except Exception:
    pass
'''
    submission = hostile(hostile_model(predict=code))
    check = unchanged(submission)
    with pytest.raises(TargetAccessError, match="tried to read"):
        evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    check()
