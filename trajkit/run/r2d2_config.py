"""The config of R2D2-style SAC, beside :mod:`trajkit.run.config` (imported at its end, which registers it).

R2D2-SAC is of the off-policy family: the same loop (:mod:`trajkit.run.off_policy`)
samples, stores and trains, with a sequence replay buffer
(:class:`trajkit.seq_buffer.SeqReplayBuffer`) in place of the step buffer and recurrent
models. Hyper-parameters have no default here: ``presets/r2d2_sac.yaml`` holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from trajkit.run.config import COUNT, NONNEG, PROB, OffPolicyConfig
from trajkit.run.fields import ConfigError, hp

__all__ = ["R2D2SACConfig", "R2D2SACTrain"]


@dataclass(kw_only=True)
class R2D2SACTrain:
    """Keyword arguments of :func:`trajkit.algos.r2d2_sac.train`."""

    batch_size: int = hp("sequences per gradient step", **COUNT)
    gamma: float = hp("discount factor", **PROB)
    tau: float = hp("Polyak coefficient of the target critics", **PROB)
    target_ent: float | None = hp("entropy target of the temperature (none: minus the action dimension)")
    per_beta: float = hp("prioritized replay: importance-weight exponent", **PROB)
    per_eta: float = hp("sequence priority: eta * max |TD| + (1 - eta) * mean |TD|", **PROB)


@dataclass(kw_only=True)
class R2D2SACConfig(OffPolicyConfig):
    """SAC with recurrent actor and critics over stored sequences (burn-in, stored states, sequence priorities)."""

    algo: ClassVar[str] = "r2d2_sac"
    summary: ClassVar[str] = (
        "R2D2-style SAC: recurrent actor and critics, sequence replay with burn-in; Box actions (algos.r2d2_sac)"
    )

    rnn: Literal["lstm", "gru"] = hp("recurrent core of the actor and the critics (a core of hidden[0] units, "
                                     "then an MLP head of hidden[1:])")
    seq_len: int = hp("training steps per stored sequence", **COUNT)
    burn_in: int = hp("steps before a sequence's training steps that only warm the states", **NONNEG)
    stride: int = hp("steps between the starts of an episode's sequences (0: seq_len // 2)", **NONNEG)
    continuing: bool = hp("episodes continue across iterations (with steps_per_iter; else each iteration "
                          "starts fresh episodes)")
    train: R2D2SACTrain = hp("keyword arguments of r2d2_sac.train")

    def check(self) -> None:
        super().check()
        if self.nstep != 1:
            raise ConfigError("r2d2_sac: targets are one-step within each sequence; set nstep=1")
        if self.stride > self.seq_len:
            raise ConfigError(f"r2d2_sac: stride ({self.stride}) must be <= seq_len ({self.seq_len})")
        if self.continuing and self.epis_per_iter > 0:
            raise ConfigError("r2d2_sac: continuing applies to steps_per_iter; whole episodes never continue")

    @property
    def seq_stride(self) -> int:
        """The buffer's stride: ``stride``, or ``seq_len // 2`` for 0."""
        return self.stride or max(1, self.seq_len // 2)

    @property
    def buffer_seqs(self) -> int:
        """Sequences kept: ``buffer_size`` steps' worth (``buffer_size / stride``)."""
        return max(1, self.buffer_size // self.seq_stride)
