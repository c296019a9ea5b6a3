"""One typed, documented configuration per algorithm.

Every config has three layers:

* the run settings every algorithm shares (:class:`RunSettings`: env, budget, seed,
  workers, device, checkpoints, evaluation);
* its family's settings (:class:`OnPolicyConfig` sampling, estimators and models;
  :class:`OffPolicyConfig` replay, exploration and update rate);
* ``train``: a dataclass whose fields are exactly the hyper-parameter keyword arguments
  of that algorithm's ``train()`` (``tests/test_run_config.py`` checks they stay in
  step), handed to it as they are.

Fields that hold hyper-parameters have no default here: their values come from the
presets (``trajkit/run/presets/*.yaml``), the one source of tuned settings. Nothing in
this module imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from trajkit.run.fields import ConfigError, hp

#: field bounds: probabilities and discounts, positive, non-negative, counts
PROB: dict[str, Any] = {"low": 0.0, "high": 1.0}
POS: dict[str, Any] = {"low": 0.0, "low_open": True}
NONNEG: dict[str, Any] = {"low": 0.0}
COUNT: dict[str, Any] = {"low": 1}


# ---------------------------------------------------------------------------- shared by every algorithm
@dataclass(kw_only=True)
class RunSettings:
    """What every run has, whatever the algorithm."""

    algo: ClassVar[str] = ""
    family: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    if TYPE_CHECKING:
        train: Any  # every algorithm config declares its own ``train`` dataclass field

    env: str = hp("gymnasium env id (or a registered trajkit/Bullet id)")
    steps: int = hp("env steps to train for (rounded up to whole iterations)", **COUNT)
    seed: int = hp("seeds model initialization, the sampler and minibatch shuffling", default=0, **NONNEG)
    num_parallel: int = hp("sampler worker processes; 0 or 1 samples in this process", default=1, **NONNEG)
    device: str = hp("torch device of the models and training batches, e.g. cpu or cuda", default="cpu")
    checkpoint_every: int = hp(
        "save a checkpoint every this many iterations (0: only at the end)", default=10, **NONNEG
    )
    eval_every: int = hp(
        "deterministic evaluation every this many env steps (0: only at the end)", default=0, **NONNEG
    )
    eval_episodes: int = hp("episodes per evaluation (seeds kept apart from training)", default=10, **COUNT)
    timeout: float | None = hp(
        "seconds any single env reset, env step or policy forward may take before the run stops with "
        "an error (none: the sampler's default, 300; 0: no limit)",
        default=None,
        **NONNEG,
    )

    def check(self) -> None:
        """Raise :class:`~trajkit.run.fields.ConfigError` for settings that cannot work together."""

    def train_kwargs(self, train: Any = None) -> dict[str, Any]:
        """The fields of ``train`` (default: this config's) as keyword arguments of the algorithm's ``train()``."""
        train = self.train if train is None else train
        return {f.name: getattr(train, f.name) for f in dataclasses.fields(train)}


# ---------------------------------------------------------------------------- on-policy family
@dataclass(kw_only=True)
class OnPolicyConfig(RunSettings):
    """Sampling, estimators and models of the on-policy loop (PPO, PPO-KL, TRPO, VPG)."""

    family: ClassVar[str] = "on_policy"
    #: whether the policy has its own optimizer (TRPO steps it itself)
    has_optim_pol: ClassVar[bool] = True
    if TYPE_CHECKING:
        train: SeqTrain  # each algorithm's own ``train`` dataclass: all have seq_len

    steps_per_iter: int = hp("env steps sampled per iteration (episodes are cut there)", **COUNT)
    num_envs: int = hp(
        "envs each sampler (or worker) steps together with one batched policy forward; an iteration's "
        "steps are split evenly over them", default=1, **COUNT,
    )
    continuing: bool = hp(
        "episodes cut at an iteration's end go on in the next iteration (the cut piece bootstraps from its "
        "final observation); false: every iteration starts fresh episodes", default=False,
    )
    hidden: list[int] = hp("hidden layer sizes of the policy and value MLPs", **COUNT)
    lr: float = hp("policy learning rate (Adam); unused by TRPO", **POS)
    vf_lr: float = hp("value-function learning rate (Adam)", **POS)
    lr_decay_steps: int = hp(
        "learning rates decay linearly to 0 at this many env steps (0: constant)", **NONNEG
    )
    gamma: float = hp("discount factor of returns and advantages", **PROB)
    lam: float = hp("GAE lambda", **PROB)
    obs_norm: bool = hp("normalize observations with running statistics (kept in checkpoints)")
    rew_norm: bool = hp(
        "divide rewards by the running std of their discounted returns (trajkit.RewScaler, as SB3's "
        "VecNormalize(norm_reward=True); kept in checkpoints); logged returns stay the env's", default=False,
    )
    rnn: Literal["none", "lstm", "gru"] = hp(
        "recurrent policy and value function: an lstm/gru core of hidden[0] units, then an MLP head of hidden[1:] "
        "(none: MLPs of hidden)", default="none",
    )
    activation: Literal["tanh", "relu"] = hp("hidden-layer activation of the policy and value MLPs",
                                             default="tanh")
    ortho_init: bool = hp("orthogonal init of the MLPs (policy output gain 0.01); false: PyTorch's default init",
                          default=True)
    log_std_init: float = hp("initial log-std of a Gaussian policy (Box actions)", default=0.0)

    def check(self) -> None:
        workers = max(1, self.num_parallel)
        if self.steps_per_iter < workers * self.num_envs:
            raise ConfigError(f"steps_per_iter={self.steps_per_iter} is less than one step for each of the "
                              f"{workers * self.num_envs} envs (num_parallel x num_envs)")
        burn_in = self.train.burn_in if isinstance(self.train, SeqBurnInTrain) else 0
        seq = {"seq_len": self.train.seq_len, "burn_in": burn_in}
        if self.rnn == "none" and (seq["seq_len"] is not None or seq["burn_in"]):
            raise ConfigError(f"seq_len and burn_in apply to recurrent models only: set rnn=lstm or rnn=gru ({seq})")
        if self.rnn != "none" and not self.hidden:
            raise ConfigError(f"rnn={self.rnn} needs hidden: its first size is the core's, the rest the head's")

    def scheduled(self, frac: float, state: dict[str, Any]) -> Any:
        """The ``train`` fields for this iteration (``frac``: the lr multiplier, 1 to 0; ``state``: carried values)."""
        return self.train

    def after_train(self, diagnostics: dict[str, float], state: dict[str, Any]) -> None:
        """Carry what the next iteration needs from this update's diagnostics into ``state``."""


@dataclass(kw_only=True)
class SeqTrain:
    """What every on-policy ``train`` has: the sequence length its recurrent models train on."""

    seq_len: int | None = hp("recurrent models: training sequences of this many steps (none: whole episodes)",
                             default=None, **COUNT)


@dataclass(kw_only=True)
class SeqBurnInTrain(SeqTrain):
    """A ``train`` whose recurrent sequences may start with burn-in steps (PPO, PPO-KL)."""

    burn_in: int = hp("recurrent models: warm-up steps before each sequence (needs seq_len)", default=0, **NONNEG)


@dataclass(kw_only=True)
class PPOTrain(SeqBurnInTrain):
    """Keyword arguments of :func:`trajkit.algos.ppo_clip.train`."""

    epoch: int = hp("passes over each iteration's steps", **COUNT)
    batch_size: int = hp("minibatch size in steps", **COUNT)
    clip_param: float = hp("ratio clip epsilon", **NONNEG)
    ent_coef: float = hp("entropy bonus coefficient", **NONNEG)
    vf_clip_param: float | None = hp("clip value predictions around the old values (none: off)", **NONNEG)
    max_grad_norm: float | None = hp("gradient-norm clip per optimizer step (none: off)", **POS)
    target_kl: float | None = hp("stop the remaining epochs once an epoch's mean KL exceeds this", **POS)


@dataclass(kw_only=True)
class PPOConfig(OnPolicyConfig):
    """PPO with the clipped surrogate objective."""

    algo: ClassVar[str] = "ppo"
    summary: ClassVar[str] = "PPO with the clipped objective (algos.ppo_clip)"

    clip_decay: bool = hp("decay clip_param with the learning rate (lr_decay_steps)")
    train: PPOTrain = hp("keyword arguments of ppo_clip.train")

    def scheduled(self, frac: float, state: dict[str, Any]) -> PPOTrain:
        if not self.clip_decay:
            return self.train
        return dataclasses.replace(self.train, clip_param=self.train.clip_param * frac)


@dataclass(kw_only=True)
class PPOKLTrain(SeqBurnInTrain):
    """Keyword arguments of :func:`trajkit.algos.ppo_kl.train`."""

    epoch: int = hp("passes over each iteration's steps", **COUNT)
    batch_size: int = hp("minibatch size in steps", **COUNT)
    kl_coef: float = hp("initial KL-penalty coefficient (adapted after every update)", **NONNEG)
    target_kl: float = hp("the KL per update the coefficient is adapted towards", **POS)
    ent_coef: float = hp("entropy bonus coefficient", **NONNEG)
    max_grad_norm: float | None = hp("gradient-norm clip per optimizer step (none: off)", **POS)


@dataclass(kw_only=True)
class PPOKLConfig(OnPolicyConfig):
    """PPO with an adaptive KL penalty; the adapted coefficient is carried between iterations."""

    algo: ClassVar[str] = "ppo_kl"
    summary: ClassVar[str] = "PPO with an adaptive KL penalty (algos.ppo_kl)"

    train: PPOKLTrain = hp("keyword arguments of ppo_kl.train")

    def scheduled(self, frac: float, state: dict[str, Any]) -> PPOKLTrain:
        return dataclasses.replace(self.train, kl_coef=state.get("kl_coef", self.train.kl_coef))

    def after_train(self, diagnostics: dict[str, float], state: dict[str, Any]) -> None:
        state["kl_coef"] = float(diagnostics["kl_coef"])


@dataclass(kw_only=True)
class TRPOTrain(SeqTrain):
    """Keyword arguments of :func:`trajkit.algos.trpo.train`."""

    max_kl: float = hp("trust-region size: mean KL allowed per update", **POS)
    cg_iters: int = hp("conjugate-gradient iterations", **COUNT)
    cg_damping: float = hp("damping added to the Fisher-vector product", **NONNEG)
    backtrack_steps: int = hp("line-search halvings before the step is rejected", **COUNT)
    vf_epoch: int = hp("value-function passes per update", **COUNT)
    vf_batch_size: int = hp("value-function minibatch size", **COUNT)
    max_grad_norm: float | None = hp("value-function gradient-norm clip (none: off)", **POS)


@dataclass(kw_only=True)
class TRPOConfig(OnPolicyConfig):
    """Trust-region policy optimization."""

    algo: ClassVar[str] = "trpo"
    summary: ClassVar[str] = "trust-region policy optimization (algos.trpo)"
    has_optim_pol: ClassVar[bool] = False

    train: TRPOTrain = hp("keyword arguments of trpo.train")


@dataclass(kw_only=True)
class VPGTrain(SeqTrain):
    """Keyword arguments of :func:`trajkit.algos.vpg.train`."""

    vf_epoch: int = hp("value-function passes per update", **COUNT)
    vf_batch_size: int = hp("value-function minibatch size", **COUNT)
    ent_coef: float = hp("entropy bonus coefficient", **NONNEG)
    max_grad_norm: float | None = hp("gradient-norm clip (none: off)", **POS)


@dataclass(kw_only=True)
class VPGConfig(OnPolicyConfig):
    """Vanilla policy gradient with a learned value baseline."""

    algo: ClassVar[str] = "vpg"
    summary: ClassVar[str] = "vanilla policy gradient with a value baseline (algos.vpg)"

    train: VPGTrain = hp("keyword arguments of vpg.train")


# ---------------------------------------------------------------------------- off-policy family
@dataclass(kw_only=True)
class OffPolicyConfig(RunSettings):
    """Replay, update rate and exploration of the off-policy loop (SAC, TD3, DDPG, DQN, QT-Opt)."""

    family: ClassVar[str] = "off_policy"

    steps_per_iter: int = hp("env steps sampled per iteration (0: use epis_per_iter)", **NONNEG)
    epis_per_iter: int = hp("whole episodes sampled per iteration (0: use steps_per_iter)", **NONNEG)
    learning_starts: int = hp("uniformly random actions for this many env steps before learning", **NONNEG)
    train_freq: int = hp("update once at least this many new steps have arrived", **COUNT)
    grad_ratio: float = hp("gradient steps per new env step", **POS)
    buffer_size: int = hp("replay buffer capacity in steps", **COUNT)
    hidden: list[int] = hp("hidden layer sizes of every network", **COUNT)
    lr: float = hp("learning rate of every optimizer (Adam)", **POS)
    lr_decay_steps: int = hp("learning rates decay linearly to 0 at this many env steps (0: constant)", **NONNEG)
    nstep: int = hp("n of n-step returns (1: one-step targets)", **COUNT)
    prioritized: bool = hp("prioritized replay (sum-tree); the train fields' per_beta weighs it")
    per_alpha: float = hp("prioritized replay: priority exponent", **NONNEG)

    def check(self) -> None:
        if (self.steps_per_iter > 0) == (self.epis_per_iter > 0):
            raise ConfigError(
                f"{self.algo}: set exactly one of steps_per_iter and epis_per_iter above 0, "
                f"got {self.steps_per_iter} and {self.epis_per_iter}"
            )
        new_steps = max(self.train_freq, self.steps_per_iter)  # the fewest new steps an update sees
        if new_steps * self.grad_ratio < 1:
            raise ConfigError(
                f"{self.algo}: an update would take no gradient step: max(train_freq, steps_per_iter) * grad_ratio "
                f"= {new_steps} * {self.grad_ratio} < 1"
            )


@dataclass(kw_only=True)
class SACTrain:
    """Keyword arguments of :func:`trajkit.algos.sac.train`."""

    batch_size: int = hp("minibatch size", **COUNT)
    gamma: float = hp("discount factor", **PROB)
    tau: float = hp("Polyak coefficient of the target critics", **PROB)
    target_ent: float | None = hp("entropy target of the temperature (none: minus the action dimension)")
    per_beta: float = hp("prioritized replay: importance-weight exponent", **PROB)


@dataclass(kw_only=True)
class SACConfig(OffPolicyConfig):
    """Soft actor-critic with twin critics and a learned temperature."""

    algo: ClassVar[str] = "sac"
    summary: ClassVar[str] = "soft actor-critic, twin critics and learned temperature; Box actions (algos.sac)"

    train: SACTrain = hp("keyword arguments of sac.train")


@dataclass(kw_only=True)
class TD3Train:
    """Keyword arguments of :func:`trajkit.algos.td3.train`."""

    batch_size: int = hp("minibatch size", **COUNT)
    gamma: float = hp("discount factor", **PROB)
    tau: float = hp("Polyak coefficient of the targets", **PROB)
    policy_delay: int = hp("actor and target updates every this many critic steps", **COUNT)
    target_noise: float = hp("std of the target policy smoothing noise", **NONNEG)
    target_noise_clip: float = hp("clip of the target policy smoothing noise", **NONNEG)
    per_beta: float = hp("prioritized replay: importance-weight exponent", **PROB)


@dataclass(kw_only=True)
class TD3Config(OffPolicyConfig):
    """Twin delayed DDPG."""

    algo: ClassVar[str] = "td3"
    summary: ClassVar[str] = "twin delayed DDPG with target smoothing; Box actions (algos.td3)"

    action_noise: float = hp("std of the Gaussian exploration noise (in [-1, 1] action units)", **NONNEG)
    train: TD3Train = hp("keyword arguments of td3.train")


@dataclass(kw_only=True)
class DDPGTrain:
    """Keyword arguments of :func:`trajkit.algos.ddpg.train`."""

    batch_size: int = hp("minibatch size", **COUNT)
    gamma: float = hp("discount factor", **PROB)
    tau: float = hp("Polyak coefficient of the targets", **PROB)
    per_beta: float = hp("prioritized replay: importance-weight exponent", **PROB)


@dataclass(kw_only=True)
class DDPGConfig(OffPolicyConfig):
    """Deep deterministic policy gradient."""

    algo: ClassVar[str] = "ddpg"
    summary: ClassVar[str] = "deep deterministic policy gradient, optionally prioritized; Box actions (algos.ddpg)"

    noise: Literal["gaussian", "ou"] = hp("exploration noise process")
    action_noise: float = hp("scale (sigma) of the exploration noise", **NONNEG)
    train: DDPGTrain = hp("keyword arguments of ddpg.train")


@dataclass(kw_only=True)
class EpsilonGreedy:
    """The epsilon schedule of DQN and QT-Opt (fields shared by both configs)."""

    exploration_steps: int = hp("epsilon decays linearly from 1 to eps_end over this many steps", **NONNEG)
    eps_end: float = hp("final exploration epsilon", **PROB)

    def epsilon_at(self, env_steps: int) -> float:
        """Epsilon after ``env_steps`` steps (past the warm-up)."""
        if self.exploration_steps <= 0:
            return self.eps_end
        return max(self.eps_end, 1.0 - (1.0 - self.eps_end) * env_steps / self.exploration_steps)


@dataclass(kw_only=True)
class DQNTrain:
    """Keyword arguments of :func:`trajkit.algos.dqn.train`."""

    batch_size: int = hp("minibatch size", **COUNT)
    gamma: float = hp("discount factor", **PROB)
    double: bool = hp("double-DQN targets")
    huber: bool = hp("Huber loss instead of squared error")
    tau: float = hp("Polyak coefficient of the target network (1: hard copy)", **PROB)
    target_update_interval: int = hp("target update every this many gradient steps", **COUNT)
    max_grad_norm: float | None = hp("gradient-norm clip (none: off)", **POS)
    per_beta: float = hp("prioritized replay: importance-weight exponent", **PROB)


@dataclass(kw_only=True)
class DQNConfig(OffPolicyConfig, EpsilonGreedy):
    """Double DQN with optional dueling heads."""

    algo: ClassVar[str] = "dqn"
    summary: ClassVar[str] = "double DQN with dueling heads, optionally prioritized; Discrete actions (algos.dqn)"

    dueling: bool = hp("dueling value/advantage heads")
    train: DQNTrain = hp("keyword arguments of dqn.train")


@dataclass(kw_only=True)
class QTOptTrain:
    """Keyword arguments of :func:`trajkit.algos.qtopt.train`."""

    batch_size: int = hp("minibatch size", **COUNT)
    gamma: float = hp("discount factor", **PROB)
    tau: float = hp("Polyak coefficient of the target critics", **PROB)
    per_beta: float = hp("prioritized replay: importance-weight exponent", **PROB)


@dataclass(kw_only=True)
class QTOptConfig(OffPolicyConfig, EpsilonGreedy):
    """QT-Opt: twin Q-learning whose argmax is a cross-entropy-method search."""

    algo: ClassVar[str] = "qtopt"
    summary: ClassVar[str] = "QT-Opt: twin Q-learning with a cross-entropy-method argmax; Box actions (algos.qtopt)"

    cem_samples: int = hp("CEM: actions sampled per iteration", **COUNT)
    cem_elite: int = hp("CEM: elite actions kept per iteration", **COUNT)
    cem_iters: int = hp("CEM: iterations", **COUNT)
    train: QTOptTrain = hp("keyword arguments of qtopt.train")

    def check(self) -> None:
        super().check()
        if self.cem_elite > self.cem_samples:
            raise ConfigError(f"qtopt: cem_elite ({self.cem_elite}) must not exceed cem_samples ({self.cem_samples})")


def algo_configs() -> dict[str, type[RunSettings]]:
    """Every algorithm config (a subclass of :class:`RunSettings` with an ``algo`` name), by name.

    Defining a config class is what makes its algorithm known to the presets and the
    command line; :mod:`trajkit.run.registry` pairs it with its models and ``train()``.
    """
    out: dict[str, type[RunSettings]] = {}
    todo = list(RunSettings.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if cls.algo:
            out.setdefault(cls.algo, cls)
    return out


# the model-based and adversarial families' configs live in their own modules; importing them here registers them
from trajkit.run import adversarial_config, model_based_config, r2d2_config  # noqa: E402, F401
