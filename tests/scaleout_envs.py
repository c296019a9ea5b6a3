"""Envs for the vectorized-worker and Ray backend tests (a plain module: workers import it by name)."""

from __future__ import annotations

import os
import signal
import time

import trajkit as tk


class DiesOnStep(tk.GymEnv):
    """CartPole whose process exits at the first step (a crashed robot driver, a segfault)."""

    def step(self, action):  # type: ignore[no-untyped-def]
        os._exit(3)


class DiesOnceOnStep(tk.GymEnv):
    """CartPole that kills its process at the first step of whichever copy first creates ``marker``."""

    def __init__(self, marker: str) -> None:
        super().__init__("CartPole-v1")
        self.marker = marker

    def step(self, action):  # type: ignore[no-untyped-def]
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return super().step(action)
        os._exit(3)


class HangsOnStep(tk.GymEnv):
    """CartPole whose third step sleeps for a minute (a stuck driver); ``immune``: with SIGALRM blocked first."""

    def __init__(self, immune: bool = False) -> None:
        super().__init__("CartPole-v1")
        self.steps, self.immune = 0, immune

    def step(self, action):  # type: ignore[no-untyped-def]
        self.steps += 1
        if self.steps == 3:
            if self.immune:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(60)
        return super().step(action)
