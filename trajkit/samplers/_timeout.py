"""Sampler timeouts: no env call (reset or step) or policy forward may hang a sampler forever.

Where the rollout runs (this process, a worker process, a Ray actor) an
:class:`CallAlarm` arms ``SIGALRM`` (``setitimer``, about 1 us per call) around every
env reset, env step and policy forward; a call that has not returned after ``timeout``
seconds is interrupted with :class:`SamplerTimeout`, whose traceback shows where it
hung. That needs the main thread of the process (signals are delivered there); off it
the alarm warns and does nothing.

A call stuck in native code that never returns to Python cannot be interrupted by a
signal, so a worker process also reports progress to the parent (a heartbeat at most
every :func:`beat_interval` seconds, sent between calls); the parent kills a worker
that stays silent for :func:`silence_limit` seconds. A Ray actor has no channel for
heartbeats: a :class:`StallWatchdog` thread in it ends its process instead (which the
parent sees as a dead actor); it cannot help when native code holds the GIL.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

from trajkit.checks import check_float

#: a worker's heartbeat frame, "still sampling" (bytes: immutable)
BEAT = pickle.dumps(("beat", None))

#: seconds one env reset, env step or policy forward may take by default (``timeout=None``: no limit)
DEFAULT_TIMEOUT = 300.0


class SamplerTimeout(TimeoutError):
    """An env call or policy forward took longer than the sampler's ``timeout``, or a worker went silent.

    The message names the worker(s) and what they were doing. The timed-out workers
    are killed and the sampler is closed: build a new one (and ``load_state_dict`` a
    saved state to continue a run).
    """


def check_timeout(name: str, timeout: object) -> float | None:
    """``timeout`` as seconds (a finite number > 0) or None (no limit)."""
    return None if timeout is None else check_float(name, timeout, min_value=0.0, min_open=True)


def grace(timeout: float) -> float:
    """Extra seconds the parent waits past ``timeout`` for a worker's own timeout report (1 to 5 s).

    At least 1 s: a worker also goes quiet while it pickles a large reply.
    """
    return max(1.0, min(timeout, 5.0))


def beat_interval(timeout: float) -> float:
    """Seconds between a sampling worker's heartbeats (at most; sent between calls)."""
    return min(1.0, timeout / 4)


def silence_limit(timeout: float | None) -> float | None:
    """Seconds a sampling worker may send nothing before the parent kills it.

    Between two heartbeats lie at most ``beat_interval`` seconds plus one call, which
    the worker's own alarm ends after ``timeout``; ``grace`` covers reporting it.
    """
    return None if timeout is None else timeout + beat_interval(timeout) + grace(timeout)


def can_alarm() -> bool:
    """Whether :class:`CallAlarm` can interrupt calls here (a POSIX main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def warn_cannot_alarm(timeout: float | None, where: str) -> None:
    """Warn that ``timeout`` cannot be enforced ``where`` (off the main thread, or no ``setitimer``)."""
    if timeout is not None and not can_alarm():
        warnings.warn(
            f"the sampler's timeout={timeout}s is not enforced {where}: it needs SIGALRM, which only the main "
            "thread of a POSIX process receives; sample from the main thread or with worker processes "
            "(num_parallel >= 2)",
            RuntimeWarning,
            stacklevel=3,
        )


class CallAlarm:
    """Interrupts a call that runs past ``timeout`` seconds with :class:`SamplerTimeout`.

    Use as a context manager around a whole rollout, then ``arm(what)`` before each
    env call or policy forward and ``disarm()`` after it. Entering takes over
    ``SIGALRM``; leaving restores the previous handler and re-arms a timer that was
    running before (with the time it had left, or at once if that has passed).
    ``on_beat`` is called from ``disarm`` at most every ``beat_every`` seconds.
    With ``timeout=None``, or where :func:`can_alarm` is false, it does nothing.
    """

    def __init__(
        self,
        timeout: float | None,
        on_beat: Callable[[], None] | None = None,
        beat_every: float = 1.0,
    ) -> None:
        self.timeout = timeout
        self.on_beat, self.beat_every = on_beat, beat_every
        self.active = False
        self._what: tuple[str, int, int] | None = None
        self._last_beat = 0.0
        self._prev_handler: Any = None
        self._prev_timer = (0.0, 0.0)
        self._entered_at = 0.0
        self._armed_at = 0.0

    def __enter__(self) -> CallAlarm:
        self._last_beat = time.monotonic()
        if self.timeout is None or not can_alarm():
            warn_cannot_alarm(self.timeout, "in this thread")
            return self
        self._entered_at = time.monotonic()
        self._prev_timer = signal.setitimer(signal.ITIMER_REAL, 0)
        self._prev_handler = signal.signal(signal.SIGALRM, self._fire)
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        self.active = False
        self._what = None
        signal.setitimer(signal.ITIMER_REAL, 0)
        prev = self._prev_handler
        signal.signal(signal.SIGALRM, signal.SIG_DFL if prev is None else prev)
        delay, interval = self._prev_timer
        if delay > 0:
            left = delay - (time.monotonic() - self._entered_at)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), interval)

    def arm(self, call: str, env: int, step: int) -> None:
        """Start the clock for ``call`` (e.g. ``"env.step()"``) of env ``env`` at ``step`` of its episode."""
        if self.active:
            self._what = None
            signal.setitimer(signal.ITIMER_REAL, self.timeout)  # type: ignore[arg-type]
            self._armed_at = time.monotonic()
            self._what = (call, env, step)

    def disarm(self) -> None:
        """The call returned. Sends a heartbeat when one is due.

        The timer is left running (one system call per call instead of two): should it
        fire before the next :meth:`arm` re-arms it, the handler finds no call and
        ignores it. Leaving the ``with`` block stops it.
        """
        self._what = None
        if self.on_beat is not None:
            now = time.monotonic()
            if now - self._last_beat >= self.beat_every:
                self._last_beat = now
                self.on_beat()

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        what = self._what
        if what is None or time.monotonic() - self._armed_at < 0.5 * self.timeout:  # type: ignore[operator]
            return  # between calls, or the previous call's timer firing as this one was armed
        self._what = None
        call, env, step = what
        raise SamplerTimeout(
            f"{call} of env {env} at step {step} of its episode did not return within timeout={self.timeout}s"
        )


class StallWatchdog:
    """Ends this process when a request goes without heartbeats for its limit (a Ray actor's backstop).

    ``start(limit)`` before a request, ``beat()`` on each heartbeat, ``stop()`` after.
    A daemon thread sleeps until the deadline (on a condition: no polling) and, if no
    beat came meanwhile, writes why to stderr and exits the process with code 70.
    """

    EXIT_CODE = 70

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._limit: float | None = None
        self._last = 0.0
        threading.Thread(target=self._watch, name="trajkit-stall-watchdog", daemon=True).start()

    def start(self, limit: float | None) -> None:
        with self._cond:
            self._limit, self._last = limit, time.monotonic()
            self._cond.notify()

    def beat(self) -> None:
        self._last = time.monotonic()  # one float store: no lock needed under the GIL

    def stop(self) -> None:
        with self._cond:
            self._limit = None

    def _watch(self) -> None:
        with self._cond:
            while True:
                limit = self._limit
                if limit is None:
                    self._cond.wait()
                    continue
                left = self._last + limit - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                sys.stderr.write(
                    f"trajkit sampler worker (pid {os.getpid()}): no progress for {limit:.3g}s, stuck where its "
                    "timeout cannot interrupt it (native code ignoring signals?); exiting\n"
                )
                sys.stderr.flush()
                os._exit(self.EXIT_CODE)
