"""Child side of the sandbox: ``python -m bench.sandbox_worker FD`` serves one code submission.

Started as a fresh interpreter (not a multiprocessing fork/spawn) so it never re-imports the
caller's ``__main__`` and inherits no open data handles from the harness.
"""
from __future__ import annotations

import os
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

_violations: list[str] = []


# Events that start another program, which the audit hook would not follow: refused when
# their command line names the data (a heuristic: an obfuscated command still gets through).
SPAWN_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")


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


def hardware_of_worker() -> dict[str, Any]:
    """The accelerator the model ended up on, if it imported torch and CUDA is there."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return {"accelerator": torch.cuda.get_device_name(0)}
    return {"accelerator": None}


def serve(conn: Connection) -> None:
    """Build the model, then answer predict requests until told to close."""
    from bench.submission import build_forecaster, count_parameters

    def answer(message: tuple) -> bool:
        """Send ``message`` unless a guarded read happened; True when the run must stop."""
        if _violations:
            conn.send(("violation", _violations[0]))
            return True
        conn.send(message)
        return False

    try:
        _, submission, context, blocked_roots = conn.recv()
        context.load()
        install_guard(blocked_roots)
        forecaster = build_forecaster(submission, context)
        if answer(("ready", count_parameters(forecaster), hardware_of_worker())):
            return
        while True:
            message = conn.recv()
            if message[0] == "close":
                return
            _, inputs, batch = message
            if answer(("ok", np.asarray(forecaster.predict(inputs, batch)))):
                return
    except BaseException as exc:  # report anything, SystemExit included, to the harness
        kind = "MemoryError" if isinstance(exc, MemoryError) else type(exc).__name__
        answer(("error", kind, str(exc), traceback.format_exc()))


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
