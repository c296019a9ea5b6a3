"""The login stage of :class:`~trajkit.envs.remote.EnvServer`: accept, challenge, authenticate.

One thread runs :class:`LoginLoop`: a selector over the listening socket and every
connection that has not logged in yet, so connections that never log in cost a file
descriptor each, not a thread. The stage is bounded three ways:

* at most ``max_pending`` connections wait to log in; a new connection beyond that
  sheds the *oldest* waiting one (closed at once), so a flood of idle connections cannot
  lock out a client that logs in promptly;
* each connection has one deadline for its whole login (``login_timeout`` seconds from
  accept), not a timeout per read, so trickling bytes does not keep it open;
* an error from ``accept()`` is logged (at most once a second) and never ends the
  server: out of file descriptors (or memory), the oldest waiting connection is shed to
  free one; otherwise, or with none to shed, the loop backs off briefly and goes on.

A connection that logs in is handed, blocking, to ``on_login``; one that fails gets an
``error`` reply with a ``code`` (``"version"``, ``"auth"``, ``"protocol"``) and is closed.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trajkit.envs.remote.errors import RemoteProtocolError
from trajkit.envs.remote.wire import PROTOCOL_VERSION, FrameReader, encode_frame

#: the largest hello frame a client may send
MAX_HELLO_BYTES = 4096
_ACCEPTS_PER_WAKEUP = 64
_ACCEPT_BACKOFF_S = 0.05
_POLL_S = 0.2
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def mac(token: str, nonce: str) -> str:
    """HMAC-SHA256 of the hex ``nonce``, keyed by ``token`` (hex digest)."""
    return hmac.new(token.encode(), bytes.fromhex(nonce), hashlib.sha256).hexdigest()


def error_reply(code: str, message: str, kind: str | None = None) -> dict[str, Any]:
    """An ``error`` message: a machine-readable ``code``, the error ``type`` and a one-line ``message``."""
    return {"op": "error", "code": code, "type": kind, "message": message}


@dataclass
class _Pending:
    sock: socket.socket
    peer: Any
    nonce: str
    deadline: float
    reader: FrameReader = field(default_factory=lambda: FrameReader(MAX_HELLO_BYTES, 0))


class LoginLoop:
    """Accepts connections on ``listener`` and logs them in until ``stop`` is set (see the module docstring).

    ``on_login(sock, peer, hello)`` gets each connection that authenticated, with its
    ``hello`` message; it must not block for long (start a thread).
    """

    def __init__(
        self,
        listener: socket.socket,
        *,
        token: str | None,
        login_timeout: float,
        max_pending: int,
        on_login: Callable[[socket.socket, Any, dict[str, Any]], None],
        stop: threading.Event,
        logger: logging.Logger,
    ) -> None:
        self._listener, self._token = listener, token
        self._login_timeout, self._max_pending = login_timeout, max_pending
        self._on_login, self._stop, self._log = on_login, stop, logger
        self._pending: dict[int, _Pending] = {}  # by file descriptor, oldest first
        self._sel = selectors.DefaultSelector()
        self._last_accept_warning = -float("inf")

    @property
    def num_pending(self) -> int:
        """Connections waiting to log in."""
        return len(self._pending)

    def run(self) -> None:
        """Serve logins until ``stop`` is set; then close every waiting connection."""
        self._listener.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in self._sel.select(self._wait()):
                    if key.fileobj is self._listener:
                        self._accept_some()
                    elif key.data is not None:
                        self._read(key.data)
                self._expire(time.monotonic())
        finally:
            for p in list(self._pending.values()):
                self._drop(p)
            self._sel.close()

    def _wait(self) -> float:
        if not self._pending:
            return _POLL_S
        oldest = next(iter(self._pending.values()))
        return max(0.0, min(_POLL_S, oldest.deadline - time.monotonic()))

    # -- accepting
    def _accept_some(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                sock, peer = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if not self._stop.is_set():
                    self._accept_failed(e)
                return
            self._admit(sock, peer)

    def _accept_failed(self, e: OSError) -> None:
        """Log, free a descriptor by shedding the oldest login when out of them, else back off briefly."""
        if e.errno == errno.ECONNABORTED:  # the peer gave up before accept: nothing to do
            return
        now = time.monotonic()
        if now - self._last_accept_warning > 1.0:  # at most one warning a second under a flood
            self._last_accept_warning = now
            self._log.warning("accept() failed (%s); shedding the oldest waiting login and going on", e)
        if e.errno in _OUT_OF_RESOURCES and self._pending:
            self._drop(next(iter(self._pending.values())))
        else:
            self._stop.wait(_ACCEPT_BACKOFF_S)

    def _admit(self, sock: socket.socket, peer: Any) -> None:
        if len(self._pending) >= self._max_pending:
            oldest = next(iter(self._pending.values()))
            self._log.debug("%d connections waiting to log in: shedding the oldest (%s)",
                            len(self._pending), oldest.peer)
            self._drop(oldest)
        nonce = secrets.token_hex(32)
        challenge = encode_frame({"op": "challenge", "nonce": nonce, "version": PROTOCOL_VERSION,
                                  "auth": self._token is not None})
        try:
            sock.setblocking(False)
            if sock.send(challenge) != len(challenge):
                raise BlockingIOError("partial challenge")
        except OSError:
            sock.close()
            return
        p = _Pending(sock, peer, nonce, time.monotonic() + self._login_timeout)
        self._pending[sock.fileno()] = p
        self._sel.register(sock, selectors.EVENT_READ, p)

    # -- reading hellos
    def _read(self, p: _Pending) -> None:
        try:
            data = p.sock.recv(p.reader.need)
        except BlockingIOError:
            return
        except OSError:
            self._drop(p)
            return
        if not data:
            self._drop(p)
            return
        try:
            hello = p.reader.feed(data)
        except RemoteProtocolError as e:
            self._refuse(p, error_reply("protocol", f"malformed hello: {e}"))
            return
        if hello is not None:
            self._check(p, hello)

    def _check(self, p: _Pending, hello: dict[str, Any]) -> None:
        if hello.get("op") != "hello" or hello.get("version") != PROTOCOL_VERSION:
            self._refuse(p, error_reply("version", f"expected hello with protocol version {PROTOCOL_VERSION}"))
            return
        if self._token is not None:
            got = hello.get("mac")
            if not isinstance(got, str) or not hmac.compare_digest(got.encode(), mac(self._token, p.nonce).encode()):
                self._log.info("client %s: authentication failed", p.peer)
                self._refuse(p, error_reply("auth", "authentication failed: bad or missing token"))
                return
        self._forget(p)
        try:
            p.sock.setblocking(True)
        except OSError:
            p.sock.close()
            return
        try:
            self._on_login(p.sock, p.peer, hello)
        except Exception:  # noqa: BLE001 - e.g. no thread could be started: drop this client, serve the rest
            self._log.exception("client %s: could not start its session", p.peer)
            p.sock.close()

    def _refuse(self, p: _Pending, reply: dict[str, Any]) -> None:
        try:
            p.sock.send(encode_frame(reply))
        except OSError:
            pass
        self._drop(p)

    # -- deadlines and shedding
    def _expire(self, now: float) -> None:
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.deadline > now:
                return
            self._log.debug("client %s did not log in within %s s: dropping it", oldest.peer, self._login_timeout)
            self._drop(oldest)

    def _forget(self, p: _Pending) -> None:
        del self._pending[p.sock.fileno()]
        self._sel.unregister(p.sock)

    def _drop(self, p: _Pending) -> None:
        self._forget(p)
        p.sock.close()
