"""Landlock (Linux >= 5.13) through its three system calls: an allow-list of file and network access
that the kernel enforces on a process and everything it starts, C code and subprocesses included.

Called through ctypes, not a PyPI binding: the one published binding (``landlock`` 1.0.0.dev5) is
a pre-release that stops at ABI 3 (no TCP rules, no signal or abstract-socket scoping), and the
three calls below are all Landlock is. Every call here is harmless to the harness: only
``restrict_self`` changes anything, and the sandbox worker alone calls it.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import platform
from pathlib import Path

# Syscall numbers are the same on every architecture Linux added Landlock for (the unified table).
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ_ONLY = EXECUTE | READ_FILE | READ_DIR
READ_WRITE = READ_ONLY | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_SYM | REFER | TRUNCATE


class LandlockUnavailable(OSError):
    """The kernel has no usable Landlock (not Linux, too old, or disabled at boot)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 where there is none."""
    if platform.system() != "Linux":
        return 0
    version = _libc().syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(int(version), 0)


def handled_fs(abi: int) -> int:
    """Every file-system right the kernel of ``abi`` knows (all are denied unless a rule allows them)."""
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


@dataclasses.dataclass(frozen=True)
class Ruleset:
    """What a sandboxed process may touch: paths to read, paths to write, device files to use."""

    read: tuple[Path, ...]
    write: tuple[Path, ...]
    devices: tuple[Path, ...] = ()


def restrict_self(rules: Ruleset) -> int:
    """Enforce ``rules`` on this process and its future children for good; returns the ABI used.

    Everything else is denied: other files, TCP bind/connect (ABI >= 4), signals to and abstract
    sockets of processes outside the sandbox (ABI >= 6). Missing paths are skipped.
    """
    abi = abi_version()
    if abi < 1:
        raise LandlockUnavailable("this kernel has no Landlock")
    libc = _libc()
    fs = handled_fs(abi)
    attr = _RulesetAttr(fs, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise LandlockUnavailable(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    try:
        for paths, access in ((rules.read, READ_ONLY), (rules.write, READ_WRITE), (rules.devices, READ_FILE | WRITE_FILE | IOCTL_DEV)):
            for path in paths:
                _add_path(libc, ruleset, Path(path), access & fs)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise LandlockUnavailable(f"prctl(NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
        if libc.syscall(SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise LandlockUnavailable(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


def _add_path(libc: ctypes.CDLL, ruleset: int, path: Path, access: int) -> None:
    """Allow ``access`` beneath ``path`` (only file rights when it is not a directory)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            access &= FILE_RIGHTS
        rule = _PathBeneathAttr(access, fd)
        if libc.syscall(SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise LandlockUnavailable(f"landlock_add_rule({path}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
