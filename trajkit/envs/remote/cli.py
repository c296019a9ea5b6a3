"""``python -m trajkit.envs ENV_ID``: serve a registered env (one per client) from a shell."""

from __future__ import annotations

import argparse
import json
import logging
import os

from trajkit.envs.remote.actions import OUT_OF_BOUNDS_MODES
from trajkit.envs.remote.server import (
    DEFAULT_FRAME_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_PENDING,
    DEFAULT_OUT_OF_BOUNDS,
    serve,
)

_LOG = logging.getLogger("trajkit.envs.remote")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trajkit.envs",
        description="Serve a registered gymnasium env (one per client) over the remote env protocol until "
                    "interrupted. A token is required (--token-env) unless --no-token is given.",
    )
    p.add_argument("env_id", help="a gymnasium id (Bullet ids need the bullet extra)")
    p.add_argument("--host", default="127.0.0.1", help="where to listen (default loopback)")
    p.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--token-env", default=None, help="name of an environment variable holding the token")
    auth.add_argument("--no-token", action="store_true",
                      help="serve WITHOUT authentication: anyone who can connect can drive the env")
    p.add_argument("--make-kwargs", default="{}", help="JSON dict of gymnasium.make keyword arguments")
    p.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT,
                   help="seconds within which a client's next request must be complete")
    p.add_argument("--frame-timeout", type=float, default=DEFAULT_FRAME_TIMEOUT,
                   help="seconds within which a request must be complete once begun")
    p.add_argument("--handshake-timeout", type=float, default=DEFAULT_HANDSHAKE_TIMEOUT,
                   help="seconds within which a new connection must log in")
    p.add_argument("--max-envs", type=int, default=None)
    p.add_argument("--max-clients", type=int, default=DEFAULT_MAX_CLIENTS, help="logged-in clients at a time")
    p.add_argument("--max-pending", type=int, default=DEFAULT_MAX_PENDING,
                   help="connections waiting to log in; beyond it the oldest is shed")
    p.add_argument("--out-of-bounds", choices=OUT_OF_BOUNDS_MODES, default=DEFAULT_OUT_OF_BOUNDS,
                   help="refuse (error) or clip Box actions outside the bounds")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def main(argv: list[str] | None = None) -> None:
    """Parse the options and serve (see ``python -m trajkit.envs --help``)."""
    p = _parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    from trajkit.envs.gym_env import make_env

    token = None
    if args.token_env is not None:
        token = os.environ.get(args.token_env)
        if not token:
            p.error(f"environment variable {args.token_env} is empty or unset")
    elif not args.no_token:
        p.error("no token: pass --token-env VAR (the token in environment variable VAR), "
                "or --no-token to serve without authentication")
    else:
        _LOG.warning("*** --no-token: serving %s on %s WITHOUT authentication; anyone who can connect "
                     "can drive the env ***", args.env_id, args.host)
    try:
        kwargs = json.loads(args.make_kwargs)
    except json.JSONDecodeError as e:
        p.error(f"--make-kwargs is not JSON: {e}")
    if not isinstance(kwargs, dict):
        p.error(f"--make-kwargs must be a JSON dict, got {args.make_kwargs!r}")

    def announce(addr: tuple[str, int]) -> None:
        print(f"trajkit env server listening on {addr[0]}:{addr[1]}", flush=True)

    try:
        serve(lambda: make_env(args.env_id, **kwargs), args.host, args.port, token,
              idle_timeout=args.idle_timeout, frame_timeout=args.frame_timeout,
              handshake_timeout=args.handshake_timeout, max_envs=args.max_envs, max_clients=args.max_clients,
              max_pending=args.max_pending, out_of_bounds=args.out_of_bounds, on_ready=announce)
    except KeyboardInterrupt:
        pass
