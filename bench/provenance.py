"""Where a result came from: harness commit, hardware, time."""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import psutil

import bench

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def git_state(root: Path = PROJECT_ROOT) -> tuple[str | None, bool]:
    """(commit, dirty) of the checkout holding the harness, or (None, False) outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        return None, False


def _cpuinfo(key: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first ``key`` line of /proc/cpuinfo (Linux), or None where it cannot be read."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The instruction-set flags the CPU reports (Linux), or None where they cannot be read."""
    flags = _cpuinfo("flags", cpuinfo)
    return None if flags is None else frozenset(flags.split())


BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # CPUs that compute bf16 natively; elsewhere it is emulated


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether bf16 autocast runs natively on this CPU (AVX-512 BF16 or AMX); None where unknown."""
    flags = cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & BF16_FLAGS)


def hardware() -> dict:
    """The machine the evaluation ran on."""
    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def provenance(wall_time_s: float, extra_hardware: dict | None = None, isolation: str | None = None) -> dict:
    """Where a result came from; ``isolation`` says what confined the model (see bench.sandbox)."""
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "harness_version": bench.__version__,
        "hardware": {**hardware(), **(extra_hardware or {})},
        "wall_time_s": round(wall_time_s, 2),
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "isolation": isolation,
    }
