"""Remote (real) environments: any env behind a small TCP protocol.

On the machine with the env (a robot's controller, a simulator elsewhere)::

    tk.envs.serve(make_robot_env, host="127.0.0.1", port=7001, token=secret)

or from a shell (the token is read from an environment variable, not argv; without
``--token-env`` the command refuses to start unless given ``--no-token``)::

    TRAJKIT_ENV_TOKEN=secret python -m trajkit.envs Pendulum-v1 --port 7001 --token-env TRAJKIT_ENV_TOKEN

In the training script, ``tk.envs.RemoteEnv("127.0.0.1", 7001, token=secret)`` is a
gymnasium env like any other, usable by :class:`trajkit.EpiSampler`.

The protocol
------------
Every message is one frame (:mod:`~trajkit.envs.remote.wire`): a 4-byte big-endian
header length, a UTF-8 JSON header, then the raw bytes of the arrays the header lists.
Only JSON values and numeric/bool arrays cross the wire: nothing is unpickled or
evaluated. Header size, array bytes and array indices are checked (an index out of
range, negative included, is a :class:`RemoteProtocolError`). Messages are
``{"op": ...}`` dicts:

* server -> client on connect: ``challenge`` (``nonce``, whether a token is required);
* client: ``hello`` (``mac``: HMAC-SHA256 of the nonce keyed by the token, or null;
  ``purpose``: ``"episodes"`` or ``"spaces"``) -> ``ready`` (the spaces) or ``error``.
  The token never crosses the wire, the server compares MACs in constant time
  (``hmac.compare_digest``) and each nonce serves one login, so a replayed answer fails;
* ``reset`` (``seed``, ``options``) -> ``obs`` (``obs``, ``info``);
* ``step`` (``action``) -> ``transition`` (``obs``, ``rew``, ``terminated``, ``truncated``, ``info``);
* ``close``.

A refusal or failure is an ``error`` reply with a ``code`` (``version``, ``auth``,
``busy``, ``protocol``, ``bad_request``, ``needs_reset``, ``bad_action``, ``env_error``),
the error's ``type`` and a one-line ``message``; tracebacks stay in the server's log.
``info`` values that are not JSON data or numeric arrays are sent as their ``repr``.

Server safeguards (:class:`EnvServer`)
--------------------------------------
* **Bounded logins.** One thread handles every connection that has not logged in; at
  most ``max_pending`` wait, and a new one beyond that sheds the oldest (closed at once).
  Each has one deadline for its whole login (``handshake_timeout``). Errors of
  ``accept()`` (such as running out of file descriptors) are logged and never end the
  server. At most ``max_clients`` clients are logged in at a time (one thread each).
* **Deadlines, not per-read timeouts.** A logged-in client's next request must be
  complete within ``idle_timeout`` seconds, and within ``frame_timeout`` of its first
  byte, so a trickling client is dropped and its env freed.
* **Checked actions.** Every action is checked against the action space (structure,
  shape, dtype, finite) before it reaches the env; a Box action outside its bounds is
  refused or clipped (``out_of_bounds="error"`` or ``"clip"``). The client gets a
  :class:`RemoteActionError` (a ``ValueError``).
* **Reset first.** An env handed to a new client (possibly used by an earlier one) must
  be reset before it is stepped, and so after each episode's end or an env error.

Client failure handling (:class:`RemoteEnv`)
--------------------------------------------
Every wait has a deadline. A client whose server drops, dies or does not answer within
``timeout`` seconds mid-episode ends the episode as truncated (with
``info["remote_error"]`` and a warning; ``on_disconnect="raise"`` raises instead) and
reconnects at the next ``reset``, retrying with growing delays while the server is
unreachable or busy (still inside the step that timed out, say), and raising
:class:`RemoteEnvError` after ``reconnect_attempts`` tries or ``reconnect_timeout``
seconds. Nothing waits forever.

Security: the server binds to loopback unless told otherwise, warns when served without
a token (:func:`serve`; the command needs ``--no-token`` for that), and warns when
exposed beyond loopback without one. The token authenticates the client but the
traffic is not encrypted: across an untrusted network, tunnel it (SSH, WireGuard).
"""

from trajkit.envs.remote.actions import OUT_OF_BOUNDS_MODES, check_action
from trajkit.envs.remote.cli import main
from trajkit.envs.remote.client import RemoteEnv
from trajkit.envs.remote.errors import RemoteActionError, RemoteEnvError, RemoteProtocolError
from trajkit.envs.remote.server import EnvServer, serve
from trajkit.envs.remote.spaces import space_from_dict, space_to_dict
from trajkit.envs.remote.wire import (
    ALLOWED_DTYPES,
    DEFAULT_MAX_ARRAY_BYTES,
    MAX_HEADER_BYTES,
    PROTOCOL_VERSION,
    FrameReader,
    recv_msg,
    send_msg,
)

__all__ = [
    "ALLOWED_DTYPES",
    "DEFAULT_MAX_ARRAY_BYTES",
    "MAX_HEADER_BYTES",
    "OUT_OF_BOUNDS_MODES",
    "PROTOCOL_VERSION",
    "EnvServer",
    "FrameReader",
    "RemoteActionError",
    "RemoteEnv",
    "RemoteEnvError",
    "RemoteProtocolError",
    "check_action",
    "main",
    "recv_msg",
    "send_msg",
    "serve",
    "space_from_dict",
    "space_to_dict",
]
