"""A control group per sandboxed run: the kernel caps memory (descendants and tmpfs included) and the
number of processes, counts OOM kills, and lets the harness kill every process of the run at once.

cgroup v2 where this process may create a child group with the memory and pids controllers
(a delegated subtree), else v1's memory and pids hierarchies (root in a container); else none,
and the run falls back to rlimits and polling.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_group(hierarchy: str) -> str | None:
    """This process's group path in a hierarchy ("" for v2), from /proc/self/cgroup."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (hierarchy == "" and controllers == "") or hierarchy in controllers.split(","):
            return path
    return None


class RunGroup:
    """The cgroup(s) of one run; ``join_paths`` are the files to write the first process's pid into."""

    def __init__(self, dirs: list[Path], version: int):
        self.dirs = dirs
        self.version = version

    @classmethod
    def create(cls, memory_bytes: int, max_pids: int) -> "RunGroup | None":
        """A fresh group with the limits set, or None where no cgroup can be made."""
        name = f"bench-sandbox-{uuid.uuid4().hex[:12]}"
        for make in (cls._create_v2, cls._create_v1):
            try:
                group = make(name, memory_bytes, max_pids)
            except OSError:
                group = None
            if group is not None:
                return group
        return None

    @classmethod
    def _create_v2(cls, name: str, memory_bytes: int, max_pids: int) -> "RunGroup | None":
        own = _own_group("")
        root = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").is_file() else None
        if own is None or root is None:
            return None
        parent = root / own.lstrip("/")
        controllers = (parent / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(controllers):
            return None
        path = parent / name
        path.mkdir()
        group = cls([path], 2)
        try:
            (path / "memory.max").write_text(str(memory_bytes))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
            (path / "pids.max").write_text(str(max_pids))
        except OSError:
            group.remove()
            raise
        return group

    @classmethod
    def _create_v1(cls, name: str, memory_bytes: int, max_pids: int) -> "RunGroup | None":
        memory_own, pids_own = _own_group("memory"), _own_group("pids")
        if memory_own is None or pids_own is None or not (CGROUP_ROOT / "memory").is_dir():
            return None
        memory = CGROUP_ROOT / "memory" / memory_own.lstrip("/") / name
        pids = CGROUP_ROOT / "pids" / pids_own.lstrip("/") / name
        memory.mkdir()
        group = cls([memory], 1)
        try:
            pids.mkdir()
            group.dirs.append(pids)
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():
                (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            (memory / "memory.swappiness").write_text("0")
            (pids / "pids.max").write_text(str(max_pids))
        except OSError:
            group.remove()
            raise
        return group

    @property
    def join_paths(self) -> list[Path]:
        """Files a process writes its pid into to enter the group (its children follow it)."""
        return [d / "cgroup.procs" for d in self.dirs]

    def pids(self) -> list[int]:
        """Every process of the run still alive."""
        found: set[int] = set()
        for path in self.join_paths:
            try:
                found |= {int(p) for p in path.read_text().split()}
            except (OSError, ValueError):
                pass
        return sorted(found)

    def oom_kills(self) -> int:
        """How many processes of the run the kernel killed for going over the memory limit."""
        try:
            if self.version == 2:
                text = (self.dirs[0] / "memory.events").read_text()
                key = "oom_kill"
            else:
                text = (self.dirs[0] / "memory.oom_control").read_text()
                key = "oom_kill"
            for line in text.splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def peak_mb(self) -> float:
        """Peak memory of the run (all its processes), in MiB."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.dirs[0] / name).read_text()) / 2**20
        except (OSError, ValueError):
            return 0.0

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process of the run until none is left; True when the group is empty."""
        kill_file = self.dirs[0] / "cgroup.kill"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pids = self.pids()
            if not pids:
                return True
            if self.version == 2 and kill_file.exists():
                try:
                    kill_file.write_text("1")
                except OSError:
                    pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)
        return not self.pids()

    def remove(self) -> None:
        """Delete the group (empty by then)."""
        for path in reversed(self.dirs):
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
