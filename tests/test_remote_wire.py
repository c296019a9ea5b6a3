"""Remote env frames: array indices are checked, and frames have deadlines, not per-read timeouts."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
from test_remote import closed_by_peer, raw_login, serving

from trajkit.envs.remote import recv_msg, send_msg


def _frame(msg: dict, arrays: list[np.ndarray]) -> bytes:
    header = {"msg": msg, "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]}
    data = json.dumps(header).encode()
    return struct.pack(">I", len(data)) + data + b"".join(a.tobytes() for a in arrays)


@pytest.mark.parametrize("index", [-1, -2, 2, 10**6, True, 0.0, "0"], ids=repr)
def test_array_index_out_of_range_is_a_protocol_error(index: object) -> None:
    """``{"__nd__": -1}`` used to pick the last array (and 2 raised IndexError): both are protocol errors now."""
    x, y = socket.socketpair()
    with x, y:
        x.sendall(_frame({"op": "step", "action": {"__nd__": index}},
                         [np.zeros(1, np.float32), np.ones(1, np.float32)]))
        y.settimeout(2)
        with pytest.raises(ValueError, match="array index"):
            recv_msg(y)


def test_valid_array_indices_still_decode() -> None:
    x, y = socket.socketpair()
    with x, y:
        x.sendall(_frame({"op": "t", "a": {"__nd__": 1}, "b": [{"__nd__": 0}]},
                         [np.zeros(2, np.int8), np.ones(1, np.float32)]))
        y.settimeout(2)
        got = recv_msg(y)
        np.testing.assert_array_equal(got["a"], np.ones(1, np.float32))
        np.testing.assert_array_equal(got["b"][0], np.zeros(2, np.int8))


def test_server_refuses_a_bad_array_index_and_drops_the_client() -> None:
    with serving(gym.make("CartPole-v1")) as srv:
        sock = raw_login(srv.address)
        with sock:
            send_msg(sock, {"op": "reset", "seed": 0})
            assert recv_msg(sock)["op"] == "obs"
            sock.sendall(_frame({"op": "step", "action": {"__nd__": -1}}, [np.array(1)]))
            reply = recv_msg(sock)
            assert reply["op"] == "error" and reply["code"] == "protocol" and "array index -1" in reply["message"]
            assert closed_by_peer(sock, 2.0)


def _trickle(sock: socket.socket, data: bytes, every: float, stop: threading.Event) -> None:
    for i in range(len(data)):
        if stop.wait(every):
            return
        try:
            sock.sendall(data[i:i + 1])
        except OSError:
            return


def test_recv_msg_deadline_is_for_the_whole_frame_not_per_read() -> None:
    x, y = socket.socketpair()
    stop = threading.Event()
    with x, y:
        t = threading.Thread(target=_trickle, args=(x, _frame({"op": "t"}, []), 0.1, stop), daemon=True)
        t.start()
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="timed out"):
            recv_msg(y, timeout=0.5)
        assert time.monotonic() - start < 1.0
        stop.set()
        t.join(2)


def test_recv_msg_frame_timeout_counts_from_the_first_byte() -> None:
    x, y = socket.socketpair()
    stop = threading.Event()
    with x, y:
        t = threading.Thread(target=_trickle, args=(x, _frame({"op": "t"}, []), 0.1, stop), daemon=True)
        t.start()
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="begun but not completed"):
            recv_msg(y, timeout=30, frame_timeout=0.4)
        assert time.monotonic() - start < 1.0
        stop.set()
        t.join(2)
