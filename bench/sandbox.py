"""Run a code submission in a kernel-enforced sandbox; nothing that comes back from it is trusted.

On Linux the model process (bench.sandbox_worker) runs

- with **Landlock**: read access to the Python installation, the import paths, the ``bench``
  package and the submission's own directory; write access to a fresh private temp directory
  only; no TCP; no signals to or abstract sockets of processes outside the sandbox;
- in new **user, PID, network, mount and IPC namespaces** (``unshare``): no network, its own
  ``/proc`` (no other process visible), and every process it starts dies with it;
- in its own **cgroup** (memory including descendants, number of processes) and with
  **rlimits** (CPU time, file size, core dumps), so the kernel enforces the limits;
- with an allow-listed environment and the PEP 578 audit hook on top, which names the data path
  a model tried to open (``TargetAccessError``).

Where Landlock is missing (macOS, old kernels) or ``BENCH_SANDBOX=audit-hook`` is set, the run
uses the audit hook, rlimits and polling only, and the results say ``isolation: audit-hook only``.
Answers cross as framed JSON + raw bytes (bench.wire): never unpickled, read only up to the
expected size, always with a deadline.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import pickle
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench import wire
from bench.cgroups import RunGroup
from bench.errors import (
    CodecContractError,
    LatentShapeError,
    OutputDtypeError,
    OutputShapeError,
    SandboxError,
    SubmissionCrashedError,
    SubmissionMemoryError,
    SubmissionProtocolError,
    SubmissionTimeoutError,
    TargetAccessError,
)
from bench.submission import Submission, SubmissionContext

SANDBOX_ENV = "BENCH_SANDBOX"
FULL, AUDIT_HOOK = "full", "audit-hook"
AUDIT_HOOK_ONLY = "audit-hook only"
# Passed through to the model when set (thread counts, locale); nothing else of the harness's environment.
ENV_ALLOW = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "TORCH_NUM_THREADS", "MKL_THREADING_LAYER", "KMP_AFFINITY", "CUDA_VISIBLE_DEVICES", "LANG", "LC_ALL", "TZ")
NAMESPACES = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child",
              "--mount-proc", "--ipc", "--uts")
MECHANISMS = ("landlock", "namespaces", "cgroups", "rlimits")
MAX_MEMBERS = 100  # as bench.forecasts: the ensemble size scoring keeps in memory
MAX_PARAMETERS = 10**13
CLOSE_SECONDS = 5.0
# A fatal signal's usual cause, for the crash message.
SIGNAL_NOTES = {signal.SIGKILL: "killed from outside, often by the system running out of memory",
                signal.SIGXCPU: "past its CPU-time limit", signal.SIGXFSZ: "wrote a file over the file-size limit"}


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one code-submission run (the whole run, model building included)."""

    time_limit_s: float = 3600.0
    memory_limit_mb: float = 8192.0
    max_processes: int = 256
    file_size_mb: float = 2048.0


@dataclasses.dataclass(frozen=True)
class IsolationPlan:
    """Which mechanisms this machine offers a run: decided once per harness process."""

    landlock_abi: int
    namespaces: bool
    cgroups: bool

    @property
    def full(self) -> bool:
        return self.landlock_abi > 0


def _namespaces_work() -> bool:
    """True when unprivileged user, PID, network and mount namespaces can be made here."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run([*NAMESPACES, "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def isolation_plan() -> IsolationPlan:
    """Probe Landlock, namespaces and cgroups (or honour ``BENCH_SANDBOX=audit-hook``)."""
    from bench import landlock

    mode = os.environ.get(SANDBOX_ENV, FULL)
    if mode not in (FULL, AUDIT_HOOK):
        raise SandboxError(f"{SANDBOX_ENV}={mode!r} is not one of {FULL!r}, {AUDIT_HOOK!r}")
    if mode == AUDIT_HOOK or platform.system() != "Linux":
        return IsolationPlan(0, False, False)
    probe = RunGroup.create(64 * 2**20, 8)
    if probe is not None:
        probe.remove()
    return IsolationPlan(landlock.abi_version(), _namespaces_work(), probe is not None)


def isolation_label(applied: list[str]) -> str:
    """The label results files and the site show: the kernel mechanisms, or 'audit-hook only'."""
    return "+".join(applied) if "landlock" in applied else AUDIT_HOOK_ONLY


def sandbox_env(tmp_dir: Path) -> dict[str, str]:
    """The model's whole environment: an allow-list, with home and temp pointing at its private dir."""
    env = {key: os.environ[key] for key in ENV_ALLOW if key in os.environ}
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", HOME=str(tmp_dir), TMPDIR=str(tmp_dir), TMP=str(tmp_dir),
               TEMP=str(tmp_dir), PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
    return env


def rlimits(limits: SandboxLimits, plan: IsolationPlan) -> dict[str, int]:
    """Kernel limits the worker sets on itself before the model runs."""
    cpu_seconds = int(limits.time_limit_s * max(os.cpu_count() or 1, 1)) + 60
    values = {"RLIMIT_CPU": cpu_seconds, "RLIMIT_FSIZE": int(limits.file_size_mb * 2**20), "RLIMIT_CORE": 0}
    if not plan.cgroups:
        # No memory cgroup: bound the address space instead (with room for libraries' reservations).
        values["RLIMIT_AS"] = int((limits.memory_limit_mb + 4096) * 2**20)
    return values


def unreadable_roots(blocked_roots: list[Path]) -> list[str]:
    """Blocked paths that must lie outside everything Landlock lets the model read.

    The embedded quick-start sample ships inside the ``bench`` package, which the model must read;
    it is public and never the benchmark, so only the audit hook guards it.
    """
    from bench.embedded_sample import SAMPLE_FILE

    sample = os.path.realpath(SAMPLE_FILE)
    return [str(p) for p in blocked_roots if os.path.realpath(p) != sample]


def _with_cgroup(command: list[str], group: RunGroup | None) -> list[str]:
    """``command`` started by a shell that first moves itself into the run's cgroup (children follow)."""
    if group is None:
        return command
    script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@"'
    paths = [str(p) for p in group.join_paths]
    return ["/bin/sh", "-c", script, "sh", str(len(paths)), *paths, *command]


class SandboxedForecaster:
    """A code submission running in its sandbox; ``predict`` sends inputs and returns checked bytes."""

    role = "forecaster"

    def __init__(self, submission: Submission, context: SubmissionContext, blocked_roots: list[Path], limits: SandboxLimits,
                 ensemble: bool = False):
        self.submission = submission
        self.limits = limits
        self.ensemble = ensemble
        self.task = context.task
        self.deadline = time.monotonic() + limits.time_limit_s
        self.peak_rss_mb = 0.0
        self.plan = isolation_plan()
        self.applied: list[str] = []
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
        self.group = RunGroup.create(int(limits.memory_limit_mb * 2**20), limits.max_processes) if self.plan.cgroups else None
        self._process: subprocess.Popen | None = None
        try:
            self._start(context, blocked_roots)
        except BaseException:
            self.close()
            raise

    # ---- lifecycle --------------------------------------------------------------------------

    def _start(self, context: SubmissionContext, blocked_roots: list[Path]) -> None:
        parent, child = socket.socketpair()
        self._sock = parent
        worker = [sys.executable, "-I", "-B", "-m", "bench.sandbox_worker", str(child.fileno())]
        command = _with_cgroup([*NAMESPACES, "--", *worker] if self.plan.namespaces else worker, self.group)
        self._log = open(self.tmp_dir / "model.log", "wb")
        try:
            self._process = subprocess.Popen(
                command, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                env=sandbox_env(self.tmp_dir), cwd=self.tmp_dir, start_new_session=True,
            )
        finally:
            child.close()
        plan = {"landlock": self.plan.full, "namespaces": self.plan.namespaces, "tmp_dir": str(self.tmp_dir),
                "rlimits": rlimits(self.limits, self.plan)}
        climatology = context._climatology if context._climatology is not None else self._climatology(context)
        payload = pickle.dumps({
            "submission": self.submission, "task": context.task, "stats": context.stats, "climatology": climatology,
            "train_fields": context._train_fields,
            "blocked_roots": [str(p) for p in blocked_roots], "unreadable_roots": unreadable_roots(blocked_roots), "plan": plan,
            "role": self.role,
        }, protocol=5)
        self._send({"kind": "start", "pickle_bytes": len(payload)}, "starting")
        self._sendall(payload, "starting")
        sandboxed = self._receive("starting the sandbox")
        if sandboxed.get("status") != "sandboxed" or not isinstance(sandboxed.get("applied"), list):
            raise SubmissionProtocolError(f"{self.submission.name}: the sandbox did not start (got {str(sandboxed.get('status'))[:40]!r})")
        present = {m for m in sandboxed["applied"] if m in ("landlock", "rlimits")}
        present |= {"namespaces"} if self.plan.namespaces else set()
        present |= {"cgroups"} if self.group is not None else set()
        self.applied = [m for m in MECHANISMS if m in present]
        ready = self._receive("building the model")
        if ready.get("status") != "ready":
            raise SubmissionProtocolError(f"{self.submission.name}: answered {str(ready.get('status'))[:40]!r} instead of being ready")
        self.ready = ready
        parameters = ready.get("parameters")
        self.parameters = parameters if type(parameters) is int and 0 <= parameters < MAX_PARAMETERS else None
        accelerator = ready.get("accelerator")
        self.hardware = {"accelerator": accelerator[:200] if isinstance(accelerator, str) else None}

    @staticmethod
    def _climatology(context: SubmissionContext) -> np.ndarray | None:
        """The climatology array, read by the harness (the model cannot read the data directory)."""
        if context.climatology_path is None:
            return None
        context.load()
        return context._climatology

    @property
    def isolation(self) -> str:
        """What isolated this run, as results files record it."""
        return isolation_label(self.applied)

    def close(self) -> None:
        """Ask the model to stop, then make sure it and every process it started are gone."""
        if self._process is not None and self._process.poll() is None:
            try:
                wire.send(self._sock, {"kind": "close"}, deadline=time.monotonic() + 1)
                self._process.wait(timeout=CLOSE_SECONDS)
            except (wire.WireError, OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        if getattr(self, "_sock", None) is not None:
            self._sock.close()
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if self.group is not None:
            self.group.remove()
        shutil.rmtree(self.tmp_dir, onerror=_make_removable)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> "SandboxedForecaster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _descendants(self) -> list[psutil.Process]:
        if self._process is None:
            return []
        try:
            return psutil.Process(self._process.pid).children(recursive=True)
        except psutil.Error:
            return []

    def _kill(self) -> None:
        """SIGKILL the whole run: its cgroup, its process group, every descendant; wait for the launcher."""
        if self._process is None:
            return
        descendants = self._descendants()
        if self.group is not None:
            descendants += [p for p in map(_process_or_none, self.group.pids()) if p is not None]
            self.group.kill_all()
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except OSError:
            pass
        for proc in descendants:
            try:
                proc.kill()
            except psutil.Error:
                pass
        try:
            self._process.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self.group is not None:
            self.group.kill_all()
        psutil.wait_procs(descendants, timeout=CLOSE_SECONDS)  # gone, not just signalled, before results are written

    # ---- messages ---------------------------------------------------------------------------

    def _sendall(self, data: bytes, doing: str) -> None:
        try:
            self._sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
            self._sock.sendall(data)
        except socket.timeout:
            self._kill()
            raise self._timeout(doing) from None
        except OSError as exc:
            raise self._died(doing) from exc
        finally:
            self._sock.settimeout(None)

    def _send(self, header: dict[str, Any], doing: str, array: np.ndarray | None = None) -> None:
        try:
            wire.send(self._sock, header, array, deadline=self.deadline)
        except wire.Deadline:
            self._kill()
            raise self._timeout(doing) from None
        except wire.PeerGone as exc:
            raise self._died(doing) from exc

    def _timeout(self, doing: str) -> SubmissionTimeoutError:
        return SubmissionTimeoutError(
            f"{self.submission.name}: still {doing} after the {self.limits.time_limit_s:g} s time limit; "
            "make the model faster or raise --time-limit"
        )

    def _rss_mb(self) -> float:
        procs = self._descendants()
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _check_limits(self, doing: str) -> None:
        """Runs while waiting: the kernel enforces memory and processes; this enforces wall time too."""
        name = self.submission.name
        rss = self._rss_mb()
        self.peak_rss_mb = max(self.peak_rss_mb, rss)
        if rss > self.limits.memory_limit_mb:
            self._kill()
            raise SubmissionMemoryError(
                f"{name}: used {rss:.0f} MiB while {doing}, over the {self.limits.memory_limit_mb:.0f} MiB limit; "
                "use less memory (smaller batches inside predict) or raise --memory-limit"
            )
        if time.monotonic() > self.deadline:
            self._kill()
            raise self._timeout(doing)
        if self._process is not None and self._process.poll() is not None:
            raise self._died(doing)

    def _died(self, doing: str) -> Exception:
        """The error for a run that ended without answering: out of memory, or its exit code or signal."""
        self._kill()
        name = self.submission.name
        if self.group is not None and self.group.oom_kills() > 0:
            return SubmissionMemoryError(
                f"{name}: used more memory than allowed while {doing}, over the {self.limits.memory_limit_mb:.0f} MiB limit "
                "(the kernel stopped it); use less memory (smaller batches inside predict) or raise --memory-limit"
            )
        code = self._process.returncode if self._process is not None else None
        note = ""
        if code is not None and code < 0:
            note = f", signal {-code}"
            if -code in SIGNAL_NOTES:
                note += f": {SIGNAL_NOTES[-code]}"
        return SubmissionCrashedError(f"{name}: the model process died while {doing} (exit code {code}{note})")

    def _protocol_error(self, problem: str, doing: str) -> SubmissionProtocolError:
        self._kill()
        return SubmissionProtocolError(f"{self.submission.name}: {problem} while {doing}; return a numpy array from predict")

    def _receive(self, doing: str) -> dict[str, Any]:
        """The next answer header; failures, errors and violations become named errors."""
        try:
            header = wire.recv_header(self._sock, self.deadline, lambda: self._check_limits(doing))
        except wire.Deadline:
            self._kill()
            raise self._timeout(doing) from None
        except wire.PeerGone as exc:
            raise self._died(doing) from exc
        except wire.WireError as exc:
            raise self._protocol_error(str(exc), doing) from exc
        if self.group is not None and self.group.oom_kills() > 0:
            raise self._died(doing)  # a process of the run went over the memory limit, even if the model survived
        status = header.get("status")
        if status == "violation":
            self._kill()
            raise TargetAccessError(
                f"{self.submission.name}: tried to read {_text(header.get('path'), 500)} while {doing}; submissions get inputs "
                "through the harness and must not open the evaluation data"
            )
        if status == "error":
            self._kill()
            kind, text = _text(header.get("kind"), 100), _text(header.get("message"), 2000)
            if kind == "MemoryError":
                raise SubmissionMemoryError(
                    f"{self.submission.name}: ran out of memory (MemoryError) while {doing}; use less memory (smaller batches inside predict)"
                )
            if kind == "SandboxSetupError":
                raise SandboxError(f"{self.submission.name}: {text}")
            if kind == "CodecContractError":
                raise CodecContractError(f"{self.submission.name}: {text}")
            error = SubmissionCrashedError(f"{self.submission.name}: the model raised {kind} while {doing}: {text}")
            error.details = _text(header.get("trace"), 20000, keep_lines=True)
            raise error
        return header

    def expected_shape(self, batch: int, members: int | None) -> tuple[int, ...]:
        """(batch, [members,] leads, channels, lat, lon) for this task."""
        tail = (self.task.output_steps, len(self.task.channels)) + self.task.grid.shape
        return (batch,) + ((members,) if members is not None else ()) + tail

    def predict(self, inputs: np.ndarray, init_times: np.ndarray) -> np.ndarray:
        """The model's forecast for ``inputs``: read only once its dtype and shape are what the task needs."""
        doing = "predicting"
        source = f"{self.submission.name} ({self.task.name})"
        self._send({"kind": "predict", "init_times": [int(t) for t in np.asarray(init_times, dtype="datetime64[ns]").astype(np.int64)]},
                   doing, np.ascontiguousarray(inputs, dtype=np.float32))
        dtype, shape = self._answer_spec(doing, f"{source}: forecast", "float32 (or float64)")
        batch = len(inputs)
        members = shape[1] if self.ensemble and len(shape) == 6 and 1 <= shape[1] <= MAX_MEMBERS else None
        want = self.expected_shape(batch, members if self.ensemble else None)
        if shape != want:
            self._kill()
            layout = "(batch, members, 4, channel, 32, 64)" if self.ensemble else "(batch, 4, channel, 32, 64)"
            limit = f", at most {MAX_MEMBERS} members" if self.ensemble else ""
            raise OutputShapeError(f"{source}: forecast has shape {shape}, expected {want} i.e. {layout}{limit}")
        return self._receive_array(dtype, shape, doing)

    def _answer_spec(self, doing: str, what: str, dtypes: str) -> tuple[str, tuple[int, ...]]:
        """The (dtype, shape) the worker announces for its answer; a named error for a bad dtype or status."""
        header = self._receive(doing)
        if header.get("status") == "bad-dtype":
            self._kill()
            raise OutputDtypeError(f"{what} dtype is {_text(header.get('dtype'), 100)}; return {dtypes}")
        if header.get("status") != "ok":
            raise self._protocol_error(f"answered {str(header.get('status'))[:40]!r}", doing)
        try:
            return wire.array_spec(header)
        except wire.WireError as exc:
            raise self._protocol_error(str(exc), doing) from exc

    def _receive_array(self, dtype: str, shape: tuple[int, ...], doing: str) -> np.ndarray:
        """The announced array, read within the deadline and the memory limit."""
        try:
            return wire.recv_array(self._sock, dtype, shape, self.deadline, lambda: self._check_limits(doing))
        except wire.Deadline:
            self._kill()
            raise self._timeout(doing) from None
        except wire.PeerGone as exc:
            raise self._died(doing) from exc


MAX_LATENT_VALUES = 2**24  # per field: 64 MiB of float32, far above any codec of the design documents
MAX_DESCRIPTION_CHARS = 4000
FLOAT_DTYPES = ("float16", "float32", "float64")


def checked_latent_shape(raw: object, name: str) -> tuple[int, ...]:
    """A codec's declared latent shape (one field, no batch), checked to be a short tuple of positive ints."""
    if not (isinstance(raw, list) and 1 <= len(raw) <= 6 and all(type(n) is int and n >= 1 for n in raw)):
        raise CodecContractError(f"{name}: latent_shape {str(raw)[:80]} must be a tuple of 1 to 6 positive integers, e.g. (4, 4, 8)")
    if int(np.prod(raw, dtype=np.int64)) > MAX_LATENT_VALUES:
        raise CodecContractError(f"{name}: latent_shape {tuple(raw)} holds over {MAX_LATENT_VALUES} values per field; make the latent smaller")
    return tuple(raw)


def checked_description(raw: object, name: str) -> dict[str, Any]:
    """A codec's describe() as plain JSON data of bounded size (it is shown on the site as text)."""
    text = json.dumps(raw, allow_nan=False) if isinstance(raw, dict) else ""
    if not isinstance(raw, dict) or len(text) > MAX_DESCRIPTION_CHARS:
        raise CodecContractError(f"{name}: describe() must return a JSON object of at most {MAX_DESCRIPTION_CHARS} characters")
    return json.loads(text)


class SandboxedCodec(SandboxedForecaster):
    """One half of a codec submission, in its own sandbox: the encoder process or the decoder process.

    The harness runs two: fields go to the encoder, latents come back to the harness, which checks
    them and sends them itself to the decoder, a separate process with its own private temp dir, so
    the decoder sees nothing but the latents (no memory or file the encoder could leave behind).
    """

    ROLES = ("encoder", "decoder")

    def __init__(self, submission: Submission, context: SubmissionContext, blocked_roots: list[Path], limits: SandboxLimits, role: str):
        if role not in self.ROLES:
            raise ValueError(f"role must be one of {self.ROLES}")
        self.role = role
        super().__init__(submission, context, blocked_roots, limits)
        try:
            self.latent_shape = checked_latent_shape(self.ready.get("latent_shape"), submission.name)
            self.description = checked_description(self.ready.get("description"), submission.name)
        except BaseException:
            self.close()
            raise

    def _exchange(self, kind: str, array: np.ndarray, doing: str, want: tuple[int, ...], what: str, layout: str,
                  shape_error: type[OutputShapeError]) -> np.ndarray:
        """Send ``array`` for ``kind``; read the answer only once it is a float array of shape ``want``."""
        source = f"{self.submission.name} ({self.task.name})"
        self._send({"kind": kind}, doing, array)
        dtype, shape = self._answer_spec(doing, f"{source}: {what}", "float32")
        if dtype not in FLOAT_DTYPES:
            self._kill()
            raise OutputDtypeError(f"{source}: {what} dtype is {dtype}; return float32")
        if shape != want:
            self._kill()
            raise shape_error(f"{source}: {what} have shape {shape}, expected {want} i.e. {layout}")
        return self._receive_array(dtype, shape, doing)

    def encode(self, fields: np.ndarray) -> np.ndarray:
        """Latents of ``fields`` (B, C, 32, 64) physical units, read only once they are (B, *latent_shape) floats."""
        want = (len(fields),) + self.latent_shape
        return self._exchange("encode", np.ascontiguousarray(fields, dtype=np.float32), "encoding", want, "latents",
                              f"(batch, *latent_shape) with the declared latent_shape {self.latent_shape}", LatentShapeError)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Fields decoded from ``latents``, read only once they are (B, C, 32, 64) floats."""
        want = (len(latents), len(self.task.channels)) + self.task.grid.shape
        return self._exchange("decode", np.ascontiguousarray(latents), "decoding", want, "reconstructions",
                              "(batch, channel, 32, 64)", OutputShapeError)


def _text(value: object, limit: int, keep_lines: bool = False) -> str:
    """Untrusted text from the model, printable and bounded."""
    text = value if isinstance(value, str) else repr(value)
    kept = "\n\t" if keep_lines else ""
    return "".join(c if c.isprintable() or c in kept else " " for c in text[:limit])


def _process_or_none(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _make_removable(function, path, _exc_info) -> None:
    """rmtree's error hook: give back the permissions a model took away, then retry once."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        function(path)
    except OSError:
        pass
