"""The bytes between the harness and a sandboxed model: framed JSON headers and raw arrays, no pickle.

A frame is a 4-byte big-endian header length, a UTF-8 JSON object, and, when the header says
``"array": {"dtype", "shape"}``, exactly that array's bytes. The harness side reads with a
deadline, refuses a header over ``MAX_HEADER_BYTES`` and reads an array only after its dtype is
on the allow-list and its shape equals the one expected, so a model can neither run code in the
harness nor make it wait or allocate more than one expected forecast.
"""
from __future__ import annotations

import json
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_HEADER_BYTES = 64 * 1024
LENGTH = struct.Struct(">I")
# Little-endian numeric dtypes only: object, string, void and structured dtypes never cross.
ALLOWED_DTYPES = frozenset({"float16", "float32", "float64", "int8", "int16", "int32", "int64",
                            "uint8", "uint16", "uint32", "uint64", "bool"})
POLL_SECONDS = 0.05


class WireError(Exception):
    """The peer sent something that is not a valid frame (the harness turns it into a named error)."""


class PeerGone(WireError):
    """The peer closed its end."""


class Deadline(WireError):
    """The deadline passed before the frame was complete."""


def encode(header: dict[str, Any], array: np.ndarray | None = None) -> list[bytes | memoryview]:
    """The frame for ``header`` and an optional array (its dtype and shape are added to the header)."""
    if array is not None:
        array = np.ascontiguousarray(array)
        header = {**header, "array": {"dtype": array.dtype.name, "shape": list(array.shape)}}
    text = json.dumps(header, allow_nan=False).encode()
    parts: list[bytes | memoryview] = [LENGTH.pack(len(text)), text]
    if array is not None and array.nbytes:
        parts.append(memoryview(array).cast("B"))
    return parts


def send(sock: socket.socket, header: dict[str, Any], array: np.ndarray | None = None, deadline: float | None = None) -> None:
    """Send one frame; with a ``deadline`` (time.monotonic) a peer that stops reading cannot block us."""
    for part in encode(header, array):
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline("deadline passed while sending")
            sock.settimeout(remaining)
        try:
            sock.sendall(part)
        except socket.timeout as exc:
            raise Deadline("the peer stopped reading") from exc
        except OSError as exc:
            raise PeerGone(f"the peer is gone ({exc.strerror or exc})") from exc
        finally:
            if deadline is not None:
                sock.settimeout(None)


def recv_exact(sock: socket.socket, size: int, deadline: float | None = None, waiting: Callable[[], None] | None = None) -> bytearray:
    """Exactly ``size`` bytes; ``waiting`` runs between polls (to enforce limits) while none arrive."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        if deadline is not None or waiting is not None:
            ready, _, _ = select.select([sock], [], [], POLL_SECONDS)
            if not ready:
                if waiting is not None:
                    waiting()
                if deadline is not None and time.monotonic() > deadline:
                    raise Deadline("deadline passed while receiving")
                continue
        try:
            count = sock.recv_into(view[got:], size - got)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise PeerGone(f"the peer is gone ({exc.strerror or exc})") from exc
        if count == 0:
            raise PeerGone("the peer closed the connection")
        got += count
    return buffer


def recv_header(sock: socket.socket, deadline: float | None = None, waiting: Callable[[], None] | None = None,
                max_bytes: int = MAX_HEADER_BYTES) -> dict[str, Any]:
    """One JSON header (at most ``max_bytes``), checked to be an object."""
    (length,) = LENGTH.unpack(recv_exact(sock, LENGTH.size, deadline, waiting))
    if length > max_bytes:
        raise WireError(f"sent a {length}-byte message header; the limit is {max_bytes} bytes")
    raw = recv_exact(sock, length, deadline, waiting)
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"sent a message that is not JSON ({type(exc).__name__})") from exc
    if not isinstance(header, dict):
        raise WireError("sent a message that is not a JSON object")
    return header


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def array_spec(header: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
    """The (dtype, shape) an array header announces, checked for types and the dtype allow-list."""
    spec = header.get("array")
    if not isinstance(spec, dict):
        raise WireError("sent an answer without an array description")
    dtype, shape = spec.get("dtype"), spec.get("shape")
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise WireError(f"sent an array of dtype {str(dtype)[:40]!r}; only numeric dtypes cross ({', '.join(sorted(ALLOWED_DTYPES))})")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(n) is int and 0 <= n < 2**31 for n in shape):
        raise WireError("sent an array shape that is not a short list of non-negative integers")
    return dtype, tuple(shape)


def recv_array(sock: socket.socket, dtype: str, shape: tuple[int, ...], deadline: float | None = None,
               waiting: Callable[[], None] | None = None) -> np.ndarray:
    """The raw bytes of an array already checked by the caller (dtype allowed, shape expected)."""
    dt = np.dtype(dtype).newbyteorder("<")
    size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    return np.frombuffer(recv_exact(sock, size, deadline, waiting), dtype=dt).reshape(shape)
