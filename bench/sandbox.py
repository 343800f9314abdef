"""Run a code submission in a separate process with a time limit, a memory limit and no access
to the evaluation data.

The child (bench.sandbox_worker, a fresh interpreter) gets inputs through a socket and never the targets. An audit hook (PEP 578) refuses
any file open, directory listing or command line naming the data store, and the harness reports
that as a TargetAccessError even if the model swallows the exception. An audit hook stops Python-level
access only; code in a C extension could bypass it, so the leaderboard still reviews code.
"""
from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import psutil

from bench.errors import (
    SubmissionCrashedError,
    SubmissionError,
    SubmissionMemoryError,
    SubmissionTimeoutError,
    TargetAccessError,
)
from bench.submission import Batch, Submission, SubmissionContext

POLL_SECONDS = 0.02


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one code-submission run (the whole run, model building included)."""

    time_limit_s: float = 3600.0
    memory_limit_mb: float = 8192.0


class SandboxedForecaster:
    """A code submission running in a child process; ``predict`` mirrors the model's."""

    def __init__(self, submission: Submission, context: SubmissionContext, blocked_roots: list[Path], limits: SandboxLimits):
        self.submission = submission
        self.limits = limits
        self.deadline = time.monotonic() + limits.time_limit_s
        self.peak_rss_mb = 0.0
        parent_socket, child_socket = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.sandbox_worker", str(child_socket.fileno())],
            pass_fds=(child_socket.fileno(),),
        )
        child_socket.close()
        self._conn = Connection(parent_socket.detach())
        self._send(("start", submission, context, [str(p) for p in blocked_roots]))
        _, self.parameters, self.hardware = self._receive("building the model")

    def predict(self, inputs: np.ndarray, batch: Batch) -> np.ndarray:
        self._send(("predict", inputs, batch))
        return self._receive("predicting")[1]

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._conn.send(("close",))
                self._process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        self._conn.close()

    def __enter__(self) -> "SandboxedForecaster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=5)

    def _send(self, message: tuple) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            raise SubmissionCrashedError(f"{self.submission.name}: the model process is gone ({exc})") from exc

    def _rss_mb(self) -> float:
        try:
            proc = psutil.Process(self._process.pid)
            procs = [proc] + proc.children(recursive=True)
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.Error:
            return 0.0

    def _died(self, doing: str) -> SubmissionCrashedError:
        """The error for a child that exited without answering, with its exit code or signal."""
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self._process.returncode
        note = f", signal {-code}" if code is not None and code < 0 else ""
        if code == -9:
            note += ": killed from outside, often by the system running out of memory"
        return SubmissionCrashedError(f"{self.submission.name}: the model process died while {doing} (exit code {code}{note})")

    def _receive(self, doing: str) -> tuple:
        """Wait for the child's answer while enforcing the limits; turn failures into named errors."""
        name = self.submission.name
        while not self._conn.poll(POLL_SECONDS):
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
                raise SubmissionTimeoutError(
                    f"{name}: still {doing} after the {self.limits.time_limit_s:g} s time limit; "
                    "make the model faster or raise --time-limit"
                )
            if self._process.poll() is not None and not self._conn.poll(0):
                raise self._died(doing)
        try:
            message = self._conn.recv()
        except EOFError as exc:  # the child died: its end of the socket closed
            raise self._died(doing) from exc
        status = message[0]
        if status == "violation":
            self._kill()
            raise TargetAccessError(
                f"{name}: tried to read {message[1]} while {doing}; submissions get inputs through the harness "
                "and must not open the evaluation data"
            )
        if status == "error":
            _, kind, text, trace = message
            self._kill()
            if kind == "MemoryError":
                raise SubmissionMemoryError(
                    f"{name}: ran out of memory (MemoryError) while {doing}; use less memory (smaller batches inside predict)"
                )
            error = SubmissionCrashedError(f"{name}: the model raised {kind} while {doing}: {text}")
            error.details = trace
            raise error
        return message
