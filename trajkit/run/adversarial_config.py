"""Configs of adversarial imitation (GAIL, AIRL) and skill discovery (DIAYN), beside :mod:`trajkit.run.config`.

Each extends its learner's config, so every setting of the learner (``ppo`` or ``sac``)
keeps its name, its ``train`` fields and its loop's meaning; the fields added here are
the expert data, the discriminator's model and optimizer, and the keyword arguments of
the discriminator's ``train()`` (:mod:`trajkit.algos.gail`, ``airl``, ``diayn``; handed
over by :meth:`AdversarialSettings.discrim_train_kwargs`). Hyper-parameters have no
default here: the presets (``trajkit/run/presets/{gail,gail_sac,airl,diayn_sac}.yaml``)
hold them. Imported at the end of :mod:`trajkit.run.config`, so they are registered
like every other config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from trajkit.run.config import COUNT, NONNEG, POS, PPOConfig, SACConfig
from trajkit.run.fields import ConfigError, hp

__all__ = ["AIRLConfig", "AdversarialSettings", "DIAYNConfig", "GAILConfig", "GAILSACConfig"]


@dataclass(kw_only=True)
class AdversarialSettings:
    """The discriminator's settings, shared by GAIL, AIRL and DIAYN."""

    discrim_hidden: list[int] = hp("hidden layer sizes of the discriminator", **COUNT)
    discrim_lr: float = hp("discriminator learning rate (Adam)", **POS)
    discrim_steps: int = hp("discriminator gradient steps per iteration", **NONNEG)
    discrim_batch_size: int = hp("rows drawn from each side per discriminator step", **COUNT)
    discrim_max_grad_norm: float | None = hp("discriminator gradient-norm clip (none: off)", **POS)
    discrim_weight_decay: float = hp("L2 weight decay of the discriminator's Adam (0: none)", default=0.0, **NONNEG)

    def discrim_train_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the discriminator's ``train()`` (besides models and data)."""
        return {"batch_size": self.discrim_batch_size, "max_grad_norm": self.discrim_max_grad_norm}


@dataclass(kw_only=True)
class ImitationSettings(AdversarialSettings):
    """Where the expert's demonstrations come from."""

    expert: str = hp("Traj file of expert episodes (tk.save_traj; `trajkit train ... --expert FILE`)", default="")

    def check_expert(self) -> None:
        """ConfigError unless an expert file is named (checked when a run's models are built, so presets
        resolve without one)."""
        if not self.expert:
            raise ConfigError(f"{getattr(self, 'algo', 'imitation')} needs expert data: pass --expert FILE "
                              "(a tk.save_traj file of expert episodes) or --hp expert=FILE")


@dataclass(kw_only=True)
class GAILConfig(PPOConfig, ImitationSettings):
    """GAIL with PPO as the learner: pseudo-rewards of each iteration's Traj from the discriminator."""

    algo: ClassVar[str] = "gail"
    summary: ClassVar[str] = "GAIL, PPO learner on discriminator rewards; needs --expert (algos.gail)"

    reward: Literal["gail", "log_d", "logit"] = hp("pseudo-reward of the logit D: -log(1-D), log D or the logit")
    gp_coef: float = hp("weight of the discriminator's gradient penalty (0: none)", **NONNEG)

    def check(self) -> None:
        super().check()
        if self.rnn != "none":
            raise ConfigError("gail: recurrent learners are not supported (the discriminator sees single steps)")

    def discrim_train_kwargs(self) -> dict[str, Any]:
        return {**super().discrim_train_kwargs(), "gp_coef": self.gp_coef}


@dataclass(kw_only=True)
class GAILSACConfig(SACConfig, ImitationSettings):
    """GAIL with SAC as the learner: replay batches rewarded by the current discriminator."""

    algo: ClassVar[str] = "gail_sac"
    summary: ClassVar[str] = "GAIL, SAC learner rewarded per replay batch; Box actions; needs --expert (algos.gail)"

    reward: Literal["gail", "log_d", "logit"] = hp("pseudo-reward of the logit D: -log(1-D), log D or the logit")
    gp_coef: float = hp("weight of the discriminator's gradient penalty (0: none)", **NONNEG)

    def discrim_train_kwargs(self) -> dict[str, Any]:
        return {**super().discrim_train_kwargs(), "gp_coef": self.gp_coef}


@dataclass(kw_only=True)
class AIRLConfig(SACConfig, ImitationSettings):
    """AIRL with SAC as the learner: reward g(s) + shaping h, trained on f; g is saved as the recovered reward."""

    algo: ClassVar[str] = "airl"
    summary: ClassVar[str] = "AIRL, SAC learner; the recovered reward g(s) is saved; needs --expert (algos.airl)"


@dataclass(kw_only=True)
class DIAYNConfig(SACConfig, AdversarialSettings):
    """DIAYN: SAC over SkillEnv observations on the intrinsic reward log q(z|s') - log p(z)."""

    algo: ClassVar[str] = "diayn_sac"
    summary: ClassVar[str] = "DIAYN skills, SAC on log q(z|s') - log p(z) in a SkillEnv; Box actions (algos.diayn)"

    num_skills: int = hp("skills (one-hot appended to observations, drawn uniformly per episode)", low=2)
