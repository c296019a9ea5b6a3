"""The exceptions of the remote env protocol."""

from __future__ import annotations


class RemoteEnvError(RuntimeError):
    """The remote env failed: unreachable or busy server, bad token, or an exception in the env."""


class RemoteActionError(RemoteEnvError, ValueError):
    """The server refused an action: wrong structure, shape or dtype, not finite, or out of bounds.

    The action never reached the env; the episode goes on and the next step may send a
    valid action.
    """


class RemoteProtocolError(ValueError):
    """A malformed frame: bad length, header, dtype, shape, array index, or a missing ``op``."""
