"""Frames of the remote env protocol: a length-prefixed JSON header, then raw array bytes.

A frame is a 4-byte big-endian header length, a UTF-8 JSON header ``{"msg": ...,
"arrays": [{"dtype": "<f4", "shape": [3]}, ...]}`` and the raw bytes of the listed arrays,
in order. Inside ``msg`` the ``i``-th array is ``{"__nd__": i}``. Only JSON values and
bool/integer/float arrays cross the wire: nothing is unpickled or evaluated, and header
size, array bytes and array indices are checked before anything is used.

:class:`FrameReader` assembles a frame from bytes as they arrive (the server's login
stage feeds it from non-blocking sockets); :func:`recv_msg` reads one frame from a
blocking socket under deadlines for the whole frame, not per read, so a peer that
trickles bytes cannot hold a connection open.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

import numpy as np

from trajkit.envs.remote.errors import RemoteProtocolError

PROTOCOL_VERSION = 2
MAX_HEADER_BYTES = 1 << 20
DEFAULT_MAX_ARRAY_BYTES = 64 << 20
_MAX_NDIM = 32
#: array dtypes that may cross the wire (``numpy.dtype.str``)
ALLOWED_DTYPES = frozenset(
    d.str
    for t in ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
              "float16", "float32", "float64")
    for d in (np.dtype(t).newbyteorder("<"), np.dtype(t).newbyteorder(">"))
)
_LEN = struct.Struct(">I")


# ---------------------------------------------------------------------- encoding
def _encode(obj: Any, arrays: list[np.ndarray], lossy: bool) -> Any:
    """JSON-able tree with arrays replaced by ``{"__nd__": i}``; ``lossy``: unknown objects become ``repr``."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.str not in ALLOWED_DTYPES:
            if lossy:
                return repr(obj)
            raise TypeError(f"arrays of dtype {obj.dtype} cannot be sent")
        arrays.append(np.ascontiguousarray(obj))
        return {"__nd__": len(arrays) - 1}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        if "__nd__" in obj:
            raise TypeError("the key '__nd__' is reserved by the remote env protocol")
        return {str(k): _encode(v, arrays, lossy) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v, arrays, lossy) for v in obj]
    if lossy:
        return repr(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} over the remote env protocol")


def encode_frame(msg: dict[str, Any], lossy: bool = False) -> bytes:
    """The bytes of one frame carrying ``msg`` (see the module docstring)."""
    arrays: list[np.ndarray] = []
    body = _encode(msg, arrays, lossy)
    header = {"msg": body, "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]}
    data = json.dumps(header, separators=(",", ":")).encode()
    if len(data) > MAX_HEADER_BYTES:
        raise ValueError(f"message header of {len(data)} bytes exceeds {MAX_HEADER_BYTES}")
    return b"".join([_LEN.pack(len(data)), data, *(a.tobytes() for a in arrays)])


def send_msg(sock: socket.socket, msg: dict[str, Any], lossy: bool = False, *, timeout: float | None = None) -> None:
    """Send one frame; ``timeout``: seconds for the whole frame (None: the socket's own timeout)."""
    data = encode_frame(msg, lossy)
    if timeout is not None:
        sock.settimeout(timeout)
    sock.sendall(data)  # since Python 3.5 the socket timeout bounds the whole sendall


# ---------------------------------------------------------------------- decoding
def _checked_dtype(s: Any) -> str:
    if not isinstance(s, str) or s not in ALLOWED_DTYPES:
        raise RemoteProtocolError(f"dtype {s!r} is not allowed")
    return s


def _array_spec(spec: Any) -> tuple[np.dtype, tuple[int, ...]]:
    if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list):
        raise RemoteProtocolError(f"malformed array spec {spec!r}")
    dtype = np.dtype(_checked_dtype(spec.get("dtype")))
    shape = spec["shape"]
    if len(shape) > _MAX_NDIM or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise RemoteProtocolError(f"bad array shape {shape!r}: at most {_MAX_NDIM} non-negative integer dimensions")
    return dtype, tuple(shape)


def _decode(obj: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__nd__"}:
            i = obj["__nd__"]
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(arrays):
                raise RemoteProtocolError(f"array index {i!r} out of range: the frame carries {len(arrays)} arrays")
            return arrays[i]
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    return obj


class FrameReader:
    """Assembles one frame from bytes as they arrive.

    Feed it at most :attr:`need` bytes at a time (so it never reads past its frame);
    :meth:`feed` returns the message once the frame is complete and raises
    :class:`RemoteProtocolError` as soon as what arrived is malformed or over a limit.
    """

    def __init__(self, max_header_bytes: int = MAX_HEADER_BYTES, max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES):
        self.max_header_bytes, self.max_array_bytes = max_header_bytes, max_array_bytes
        self._buf = bytearray()
        self._stage = "length"
        self.need = _LEN.size
        self._body: Any = None
        self._specs: list[tuple[np.dtype, tuple[int, ...]]] = []
        #: whether any byte of the frame has arrived
        self.started = False

    def feed(self, data: bytes) -> dict[str, Any] | None:
        """Add received bytes (at most :attr:`need`); the message once complete, else None."""
        if len(data) > self.need:
            raise ValueError(f"fed {len(data)} bytes, the frame needs only {self.need}")
        self._buf += data
        self.need -= len(data)
        self.started = self.started or bool(data)
        if self.need:
            return None
        data, self._buf = bytes(self._buf), bytearray()
        if self._stage == "length":
            self._got_length(data)
            return None
        if self._stage == "header":
            return self._got_header(data)
        return self._finish(data)

    def _got_length(self, data: bytes) -> None:
        (n,) = _LEN.unpack(data)
        if not 0 < n <= self.max_header_bytes:
            raise RemoteProtocolError(f"peer announced a {n}-byte header (limit {self.max_header_bytes})")
        self._stage, self.need = "header", n

    def _got_header(self, data: bytes) -> dict[str, Any] | None:
        try:
            header = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise RemoteProtocolError(f"malformed message header: {e}") from None
        if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
            raise RemoteProtocolError("malformed message header: no 'arrays' list")
        self._body = header.get("msg")
        self._specs = [_array_spec(s) for s in header["arrays"]]
        total = sum(int(np.prod(shape, dtype=object)) * dtype.itemsize for dtype, shape in self._specs)
        if total > self.max_array_bytes:
            raise RemoteProtocolError(f"message carries {total} array bytes (limit {self.max_array_bytes})")
        if total == 0:
            return self._finish(b"")
        self._stage, self.need = "arrays", total
        return None

    def _finish(self, data: bytes) -> dict[str, Any]:
        arrays, offset = [], 0
        for dtype, shape in self._specs:
            count = int(np.prod(shape, dtype=object))
            arrays.append(np.frombuffer(data, dtype, count, offset).reshape(shape))
            offset += count * dtype.itemsize
        try:
            msg = _decode(self._body, arrays)
        except RecursionError:
            raise RemoteProtocolError("message nested too deeply") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            raise RemoteProtocolError("message without an 'op'")
        return msg


def recv_msg(
    sock: socket.socket,
    max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES,
    *,
    timeout: float | None = None,
    frame_timeout: float | None = None,
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> dict[str, Any]:
    """Receive one frame from a blocking socket.

    Args:
        timeout: seconds from this call until the frame must be complete (None: no such deadline).
        frame_timeout: seconds from the frame's first byte until it must be complete (None: none).
            Both are deadlines for the whole frame, not per read. With neither, each read
            waits as long as the socket's own timeout.

    Raises ``ConnectionError`` on EOF, ``TimeoutError`` at a deadline,
    :class:`RemoteProtocolError` (a ``ValueError``) if the frame is malformed.
    """
    reader = FrameReader(max_header_bytes, max_array_bytes)
    deadline = None if timeout is None else time.monotonic() + timeout
    late = f"timed out: no complete message within {timeout} s"
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(late)
            sock.settimeout(left)
        try:
            data = sock.recv(min(reader.need, 1 << 20))
        except TimeoutError:
            if deadline is None:
                raise
            raise TimeoutError(late) from None
        if not data:
            raise ConnectionError("connection closed by peer")
        if frame_timeout is not None and not reader.started:
            end = time.monotonic() + frame_timeout
            if deadline is None or end < deadline:
                deadline, late = end, f"timed out: a message was begun but not completed within {frame_timeout} s"
        msg = reader.feed(data)
        if msg is not None:
            return msg
