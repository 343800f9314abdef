"""Child side of the sandbox: ``python -I -B -m bench.sandbox_worker FD`` serves one code submission.

Started as a fresh interpreter (not a multiprocessing fork/spawn) so it never re-imports the
caller's ``__main__`` and inherits no open data handles from the harness. Before any model code
runs it lowers its rlimits, hides the host's daemon sockets (in its own mount namespace), locks
itself in with Landlock, installs the audit hook and reports what it applied; only then does it
import the entry point. Everything it sends back is a framed JSON header and raw array bytes
(bench.wire); the harness trusts none of it.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import re
import resource
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench import wire

_violations: list[str] = []

# Events that start another program, which the audit hook would not follow: refused when
# their command line names the data (a heuristic; Landlock is what stops the program itself).
SPAWN_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")
MAX_TEXT = 2000
MAX_TRACE = 20000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
# System files a Python process (and PyTorch, CUDA) reads; directories are read recursively. /sys holds
# no harness data and CUDA/NVML read widely in it (PCI devices, NUMA nodes, CPU topology).
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/ld.so.conf",
               "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone", "/etc/nsswitch.conf", "/etc/passwd",
               "/etc/group", "/sys", "/dev/urandom", "/dev/random")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full")


def _texts(args: tuple) -> list[str]:
    """The string arguments of an audit event, one level of lists included."""
    texts = []
    for arg in args:
        items = arg if isinstance(arg, (list, tuple)) else [arg]
        texts += [os.fsdecode(a) for a in items if isinstance(a, (str, bytes, os.PathLike))]
    return texts


def install_guard(blocked_roots: list[str]) -> None:
    """Refuse opens, listings and commands under ``blocked_roots`` from now on in this process (PEP 578)."""
    roots = sorted({os.path.realpath(r) for r in blocked_roots} | {os.path.abspath(r) for r in blocked_roots})

    def refuse(path: str) -> None:
        _violations.append(path)
        raise PermissionError(f"reading {path} is not allowed: the evaluation data is off limits")

    def guard(event: str, args: tuple) -> None:
        if event in SPAWN_EVENTS:
            for text in _texts(args):
                root = next((r for r in roots if r in text), None)
                if root is not None:
                    refuse(root)
            return
        if event not in ("open", "os.listdir", "os.scandir") or not args:
            return
        target = args[0]
        if not isinstance(target, (str, bytes, os.PathLike)):
            return
        path = os.path.realpath(os.fsdecode(target))
        if any(path == root or path.startswith(root + os.sep) for root in roots):
            refuse(path)

    sys.addaudithook(guard)


def set_rlimits(limits: dict[str, int]) -> None:
    """Lower this process's limits (its children inherit them; inside a user namespace they cannot be raised)."""
    for name, value in limits.items():
        kind = getattr(resource, name)
        soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


def hide_host_sockets() -> list[str]:
    """Mount empty tmpfs over /run (daemon sockets) and a private /dev/shm; only in our own mount namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    mounted = []
    for target, options in (("/run", b"size=1m,mode=755"), ("/var/run", b"size=1m,mode=755"), ("/dev/shm", b"size=256m,mode=1777")):
        if os.path.islink(target) or not os.path.isdir(target):
            continue
        flags = MS_NOSUID | MS_NODEV | (MS_NOEXEC if target != "/dev/shm" else MS_NOEXEC)
        if libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, options) == 0:
            mounted.append(target)
    return mounted


def python_paths() -> list[Path]:
    """The interpreter, the standard library and every import path of this (isolated-mode) interpreter."""
    import bench

    paths = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    paths |= {Path(p) for p in sys.path if p and os.path.isdir(p)}
    paths.add(Path(bench.__file__).resolve().parent)
    paths.add(Path(sys.executable).resolve().parent)
    return sorted(paths)


def overlapping(read: list[Path], blocked: list[str]) -> tuple[str, str] | None:
    """A blocked root lying inside a readable path (Landlock allows whole trees), if any."""
    for root in blocked:
        real = os.path.realpath(root)
        for path in read:
            base = os.path.realpath(path)
            if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
                return root, str(path)
    return None


def lock_in(plan: dict[str, Any], submission_dir: Path, blocked: list[str]) -> list[str]:
    """Apply the harness's isolation plan before any model code runs; returns what was applied."""
    from bench import landlock

    applied = []
    if plan.get("rlimits"):
        set_rlimits(plan["rlimits"])
        applied.append("rlimits")
    if not plan.get("landlock"):
        return applied
    private = hide_host_sockets() if plan.get("namespaces") else []
    read = python_paths() + [submission_dir] + [Path(p) for p in SYSTEM_READ]
    if plan.get("namespaces"):
        read.append(Path("/proc"))  # a fresh procfs: only the sandbox's own processes
    clash = overlapping(read, blocked)
    if clash is not None:
        raise SandboxSetupError(
            f"the evaluation data {clash[0]} lies inside {clash[1]}, which the model must be able to read; "
            "move the data (or the submission) elsewhere"
        )
    write = [Path(plan["tmp_dir"])] + [Path(p) for p in private if p == "/dev/shm"]
    devices = [Path(p) for p in DEVICES] + sorted(Path("/dev").glob("nvidia*"))
    landlock.restrict_self(landlock.Ruleset(tuple(read), tuple(write), tuple(devices)))
    applied.insert(0, "landlock")
    return applied


class SandboxSetupError(Exception):
    """The isolation the harness asked for could not be applied; the model is not run."""


def hardware_of_worker() -> dict[str, Any]:
    """The accelerator the model ended up on, if it imported torch and CUDA is there."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return {"accelerator": str(torch.cuda.get_device_name(0))[:200]}
    return {"accelerator": None}


def one_line(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` on one line, without control characters, at most ``limit`` characters."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()[:limit]


def serve(sock: socket.socket) -> None:
    """Lock in, build the model, then answer predict requests until told to close."""
    header = wire.recv_header(sock, max_bytes=2**20)
    start = pickle.loads(wire.recv_exact(sock, int(header["pickle_bytes"])))  # from the harness: trusted
    from bench.submission import SubmissionContext, build_codec, build_forecaster, count_parameters, make_batch

    def answer(reply: dict[str, Any], array: np.ndarray | None = None) -> bool:
        """Send ``reply`` unless a guarded read happened; True when the run must stop."""
        if _violations:
            wire.send(sock, {"status": "violation", "path": one_line(_violations[0], 500)})
            return True
        wire.send(sock, reply, array)
        return False

    try:
        submission, task = start["submission"], start["task"]
        applied = lock_in(start["plan"], submission.root, start["unreadable_roots"])
        install_guard(start["blocked_roots"])
        wire.send(sock, {"status": "sandboxed", "applied": applied})
        context = SubmissionContext(task=task, stats=start["stats"], submission_dir=submission.root,
                                    climatology_path=None, _climatology=start["climatology"],
                                    _train_fields=start.get("train_fields"))
        role = start.get("role", "forecaster")
        if role in ("encoder", "decoder"):
            serve_codec(sock, build_codec(submission, context), role, answer)
            return
        forecaster = build_forecaster(submission, context)
        parameters = count_parameters(forecaster)
        if answer({"status": "ready", "parameters": parameters, **hardware_of_worker()}):
            return
        while True:
            request = wire.recv_header(sock, max_bytes=2**20)
            if request.get("kind") == "close":
                return
            inputs = np.array(wire.recv_array(sock, *wire.array_spec(request)))
            batch = make_batch(task, np.array(request["init_times"], dtype="datetime64[ns]"))
            forecast = np.asarray(forecaster.predict(inputs, batch))
            if forecast.dtype.name not in wire.ALLOWED_DTYPES:
                if answer({"status": "bad-dtype", "dtype": one_line(str(forecast.dtype), 100)}):
                    return
                continue
            if answer({"status": "ok"}, forecast.astype(forecast.dtype.newbyteorder("="), copy=False)):
                return
    except BaseException as exc:  # report anything, SystemExit included, to the harness
        kind = "MemoryError" if isinstance(exc, MemoryError) else type(exc).__name__
        try:
            answer({"status": "error", "kind": one_line(kind, 100), "message": one_line(str(exc)),
                    "trace": traceback.format_exc()[-MAX_TRACE:]})
        except (wire.WireError, OSError):
            pass


def serve_codec(sock: socket.socket, codec: Any, role: str, answer) -> None:
    """Answer the requests of one codec role: ``encode`` in the encoder process, ``decode`` in the decoder process."""
    from bench.submission import count_parameters

    ready = {"status": "ready", "parameters": count_parameters(codec),
             "latent_shape": [int(n) for n in codec.latent_shape], "description": codec.describe(), **hardware_of_worker()}
    if answer(ready):
        return
    method = codec.encode if role == "encoder" else codec.decode
    while True:
        request = wire.recv_header(sock, max_bytes=2**20)
        if request.get("kind") == "close":
            return
        if request.get("kind") != role[:-1]:  # "encoder" serves "encode", "decoder" serves "decode"
            raise RuntimeError(f"the {role} process got a {str(request.get('kind'))[:20]!r} request")
        array = np.array(wire.recv_array(sock, *wire.array_spec(request)))
        result = np.asarray(method(array))
        if result.dtype.name not in wire.ALLOWED_DTYPES:
            if answer({"status": "bad-dtype", "dtype": one_line(str(result.dtype), 100)}):
                return
            continue
        if answer({"status": "ok"}, result.astype(result.dtype.newbyteorder("="), copy=False)):
            return


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
