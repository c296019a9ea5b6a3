"""Floods of connections that never log in: the server stays up, bounded, and serves a real client at once.

All traffic stays on 127.0.0.1; every flood socket is closed by the test at the end.
"""

from __future__ import annotations

import contextlib
import resource
import select
import selectors
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from test_remote import serving

from trajkit.envs import RemoteEnv

#: a server process (old API only) whose file descriptor limit leaves HEADROOM descriptors free
SERVER = textwrap.dedent("""
    import os, resource, sys
    import gymnasium as gym
    from trajkit.envs import EnvServer
    srv = EnvServer(lambda: gym.make("CartPole-v1"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = len(os.listdir("/proc/self/fd")) + int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    print("listening on", srv.address[1], flush=True)
    srv.serve_forever()
""")
HEADROOM = 40  # fewer descriptors than the default max_pending (64): the flood exhausts them


def flood_size(wanted: int) -> int:
    """``wanted`` connections, or as many as this process's descriptor limit allows with room to spare."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(wanted, soft - 128)
    if n < 3 * HEADROOM:
        pytest.skip(f"RLIMIT_NOFILE soft limit {soft} leaves too few descriptors for a flood")
    return n


@contextlib.contextmanager
def flood(address: tuple[str, int], n: int, within: float = 20.0) -> Iterator[list[socket.socket]]:
    """``n`` connections to ``address`` that never log in (non-blocking connects, waited for together)."""
    socks: list[socket.socket] = []
    try:
        with selectors.DefaultSelector() as sel:
            for _ in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setblocking(False)
                s.connect_ex(address)
                sel.register(s, selectors.EVENT_WRITE)
            end, waiting = time.monotonic() + within, n
            while waiting and time.monotonic() < end:
                for key, _ in sel.select(end - time.monotonic()):
                    sel.unregister(key.fileobj)
                    waiting -= 1
        yield socks
    finally:
        for s in socks:
            s.close()


def start_server(headroom: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(headroom)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], 60)[0]:
        proc.kill()
        raise RuntimeError("env server did not start")
    return proc, int(proc.stdout.readline().split()[-1])


def served_within(address: tuple[str, int], seconds: float) -> float:
    """Seconds a well-behaved client takes to connect, reset and step (it must be under ``seconds``)."""
    start = time.monotonic()
    env = RemoteEnv(*address, timeout=seconds, connect_timeout=seconds, reconnect_attempts=1)
    env.reset(seed=0)
    env.step(np.array(1))
    env.close()
    return time.monotonic() - start


def _flood_survives(wanted: int) -> None:
    proc, port = start_server(HEADROOM)
    try:
        with flood(("127.0.0.1", port), flood_size(wanted)):
            time.sleep(0.2)
            assert proc.poll() is None, "the server exited under the flood"
            assert served_within(("127.0.0.1", port), 1.0) < 1.0
            assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)


def test_flood_beyond_the_descriptor_limit_leaves_the_server_up_and_serving() -> None:
    """~HEADROOM connections that never logged in used to exhaust descriptors: accept() raised EMFILE and
    the server exited."""
    _flood_survives(300)


@pytest.mark.slow
def test_flood_of_5000_connections_leaves_the_server_up_and_serving() -> None:
    _flood_survives(5000)


def test_flood_costs_no_thread_per_connection_and_sheds_the_excess() -> None:
    with serving(lambda: gym.make("CartPole-v1")) as srv:  # max_pending: 64 by default
        before = threading.active_count()
        with flood(srv.address, flood_size(300)) as socks:
            time.sleep(0.3)
            assert threading.active_count() <= before  # logins share the server's one thread: none per connection
            closed = 0
            for s in socks:
                with contextlib.suppress(BlockingIOError):
                    while s.recv(4096):
                        pass
                    closed += 1
            assert closed >= len(socks) - 64  # all but max_pending shed at once
            assert served_within(srv.address, 1.0) < 1.0
