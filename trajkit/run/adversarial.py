"""The adversarial loops (GAIL, AIRL, DIAYN): the learner's loop with a discriminator step in each iteration.

* ``gail`` (PPO learner): each iteration samples ``steps_per_iter`` steps, takes
  ``discrim_steps`` steps of ``gail.train`` on them against the expert, replaces their
  rewards with ``ef.compute_pseudo_rews`` and runs the on-policy estimator chain and
  ``ppo_clip.train`` unchanged.
* ``gail_sac``, ``airl``, ``diayn_sac`` (SAC learner): each iteration adds its steps to
  the replay buffer, takes ``discrim_steps`` discriminator steps (against the expert for
  GAIL and AIRL, on the replay buffer for DIAYN) and ``grad_ratio`` SAC steps per new
  step with ``sac.train`` on a :class:`~trajkit.algos.reward_source.RewardSource`, which
  rewards every replay batch with the current discriminator.

The discriminator and its optimizer are checkpoint entries (``discrim``,
``optim_discrim``), so resumes are exact and ``trajkit eval`` runs the policy as for any
run. AIRL's recovered reward is ``discrim.g``; :func:`recovered_reward` loads it from a
run's checkpoint. DIAYN runs in ``SkillEnv(env, num_skills)``; its evaluation is the
env's return with a skill drawn per episode.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from trajkit import ef
from trajkit.algos import airl, diayn, gail, sac
from trajkit.algos.common import TrainResult
from trajkit.algos.reward_source import RewardSource
from trajkit.discrims import AIRLDiscrim, SADiscrim, SkillDiscrim, StateReward
from trajkit.ef.imitation import PseudoRewardModel
from trajkit.envs import GymEnv, SkillEnv
from trajkit.io import load_traj
from trajkit.run.adversarial_config import AIRLConfig, DIAYNConfig, GAILConfig, GAILSACConfig
from trajkit.run.config import SACConfig
from trajkit.run.fields import ConfigError
from trajkit.run.models import Models, build_on_policy, build_sac
from trajkit.run.off_policy import behaviour_pol, make_buffer, target_steps
from trajkit.run.on_policy import (
    completed_epis,
    estimate,
    logged_epis,
    lr_fraction,
    on_policy_sampler,
    scale_rews,
    set_lrs,
)
from trajkit.run.session import RunOutcome, Session, sampler_timeout
from trajkit.samplers import EpiSampler
from trajkit.traj import Traj

__all__ = ["TRANSFER_STEPS", "build_adversarial", "load_airl_discrim", "load_expert", "recovered_reward",
           "run_adversarial", "skill_accuracy", "skill_env", "skill_rollouts", "train_on_reward"]

#: env steps of a fresh SAC trained on AIRL's recovered reward, as measured in docs/algorithms/airl.md
TRANSFER_STEPS = 50_000

AdversarialConfig = GAILConfig | GAILSACConfig | AIRLConfig | DIAYNConfig


class _FixedSkill(gym.Wrapper):
    """A SkillEnv whose every episode has skill ``skill`` (a skill reused for a task)."""

    def __init__(self, env: SkillEnv, skill: int) -> None:
        super().__init__(env)
        self.fixed = skill

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, options={**(options or {}), "skill": self.fixed})


def skill_env(env_id: str, num_skills: int, skill: int | None = None) -> GymEnv:
    """``env_id`` with a skill's one-hot appended to its observations (DIAYN's env).

    Skills are drawn uniformly per episode, or always ``skill``: a trained skill policy
    (``pol`` of a ``diayn_sac`` run) in ``skill_env(env, K, skill=k)`` is a starting point
    that any learner can fine-tune on the env's reward.
    """
    env = SkillEnv(gym.make(env_id), num_skills)
    if skill is not None:
        if not 0 <= skill < num_skills:
            raise ValueError(f"skill must be in [0, {num_skills}), got {skill}")
        return GymEnv(_FixedSkill(env, skill))
    return GymEnv(env)


def sampler_env(cfg: AdversarialConfig) -> Any:
    """What the sampler and the evaluation run: the env id, or a SkillEnv factory for DIAYN."""
    if isinstance(cfg, DIAYNConfig):
        env_id, k = cfg.env, cfg.num_skills
        return lambda: skill_env(env_id, k)
    return cfg.env


def load_expert(path: str | Path, ob_space: gym.Space, ac_space: gym.Space) -> Traj:
    """The expert's Traj file with ``next_obs`` and ``terminals``; a clear error if it does not fit the env."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--expert {p}: no such file")
    traj = ef.add_next_obs(load_traj(p))
    obs_shape, ac_shape = tuple(traj["obs"].shape[1:]), tuple(traj["acs"].shape[1:])
    want_ac = () if isinstance(ac_space, gym.spaces.Discrete) else tuple(ac_space.shape or ())
    if obs_shape != tuple(ob_space.shape or ()) or ac_shape != want_ac:
        raise ConfigError(f"--expert {p}: observations {obs_shape} and actions {ac_shape} do not fit the env's "
                          f"{tuple(ob_space.shape or ())} and {want_ac}")
    return traj


def build_adversarial(cfg: AdversarialConfig, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """The learner's models (PPO's or SAC's) plus ``discrim`` and ``optim_discrim`` as checkpoint entries."""
    if isinstance(cfg, DIAYNConfig):
        ob_space = skill_env(cfg.env, cfg.num_skills).observation_space
    else:
        cfg.check_expert()  # before a run directory is written
    models = build_on_policy(cfg, ob_space, ac_space) if isinstance(cfg, GAILConfig) else build_sac(cfg, ob_space,
                                                                                                       ac_space)
    discrim: torch.nn.Module
    if isinstance(cfg, DIAYNConfig):
        discrim = SkillDiscrim(ob_space, cfg.num_skills, cfg.discrim_hidden)
    elif isinstance(cfg, AIRLConfig):
        discrim = AIRLDiscrim(ob_space, cfg.train.gamma, cfg.discrim_hidden)
    else:
        discrim = SADiscrim(ob_space, ac_space, cfg.discrim_hidden)
    models.checkpoint["discrim"] = discrim
    models.checkpoint["optim_discrim"] = torch.optim.Adam(discrim.parameters(), cfg.discrim_lr,
                                                         weight_decay=cfg.discrim_weight_decay)
    return models


def load_airl_discrim(path: str | Path) -> AIRLDiscrim:
    """AIRL's trained discriminator (``g`` and ``h``) from a run's ``checkpoint.pt`` (or run directory)."""
    from trajkit.checkpoint import load_checkpoint
    from trajkit.run.evaluate import checkpoint_path, read_checkpoint_data
    from trajkit.run.presets import from_values
    from trajkit.run.runner import env_spaces

    ckpt = checkpoint_path(path)
    values = dict(read_checkpoint_data(ckpt)["config"])
    if values.get("algo") != "airl":
        raise ConfigError(f"{ckpt} is a {values.get('algo')!r} run; a recovered reward comes from an airl run")
    cfg = from_values("airl", {**values, "device": "cpu"})
    models = build_adversarial(cfg, *env_spaces(cfg.env))  # type: ignore[arg-type]
    load_checkpoint(ckpt, {"discrim": models.checkpoint["discrim"]}, strict=False)
    discrim: AIRLDiscrim = models.checkpoint["discrim"]
    return discrim


def recovered_reward(path: str | Path) -> StateReward:
    """AIRL's recovered, state-only reward ``g(s)`` from a run's ``checkpoint.pt`` (or run directory)."""
    return load_airl_discrim(path).g


def skill_rollouts(env_id: str, pol: torch.nn.Module, num_skills: int, num_epis: int, seed: int) -> Traj:
    """``num_epis`` fresh deterministic episodes of ``pol`` in ``SkillEnv(env_id, num_skills)`` (skills drawn
    uniformly per episode from env seed ``seed``), with ``next_obs``."""
    with torch.no_grad(), EpiSampler(lambda: skill_env(env_id, num_skills), pol, seed=seed) as sampler:
        epis = sampler.sample(pol, max_epis=num_epis, deterministic=True)
    return ef.add_next_obs(Traj.from_epis(epis))


def skill_accuracy(traj: Traj, discrim: SkillDiscrim) -> float:
    """The fraction of steps whose reached state ``next_obs`` the discriminator assigns to the episode's skill."""
    with torch.no_grad():
        state_skill = discrim.split(traj["next_obs"])[1]
        return float((discrim(traj["next_obs"]).argmax(-1) == state_skill).float().mean())


def _discrim_update(cfg: AdversarialConfig, models: Models, expert: Traj | None, agent: Any,
                    gen: torch.Generator) -> TrainResult:
    """``cfg.discrim_steps`` steps of the discriminator's ``train()`` (GAIL's, AIRL's or DIAYN's)."""
    d, opt = models.checkpoint["discrim"], models.checkpoint["optim_discrim"]
    kw = {**cfg.discrim_train_kwargs(), "num_steps": cfg.discrim_steps, "generator": gen}
    if isinstance(cfg, DIAYNConfig):
        return diayn.train(traj=agent, discrim=d, optim_discrim=opt, **kw)
    if expert is None:
        raise ConfigError(f"{cfg.algo}: no expert data loaded")
    if isinstance(cfg, AIRLConfig):
        return airl.train(expert=expert, agent=agent, discrim=d, pol=models.pol, optim_discrim=opt, **kw)
    return gail.train(expert=expert, agent=agent, discrim=d, optim_discrim=opt, **kw)


def _reward_kind(cfg: AdversarialConfig) -> str:
    if isinstance(cfg, DIAYNConfig):
        return "diayn"
    return "f" if isinstance(cfg, AIRLConfig) else cfg.reward


def _extra(result: TrainResult) -> dict[str, float]:
    return {k: v for k, v in result.diagnostics.items() if k in ("discrim_loss", "expert_acc", "agent_acc",
                                                                  "skill_acc", "gp")}


def _run_on_policy(cfg: GAILConfig, models: Models, session: Session, expert: Traj) -> RunOutcome:
    from trajkit.algos import ppo_clip

    device = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    spi = cfg.steps_per_iter
    total_iters = max(1, -(-cfg.steps // spi))
    record: dict[str, float] = {}
    with on_policy_sampler(cfg, models.pol) as sampler:
        entries = {**models.checkpoint, "generator": gen, "sampler": sampler}
        session.restore(entries)
        c = session.counters
        with session.reporting(total_iters * spi) as (bar, logger):
            while c["iteration"] < total_iters:
                frac = lr_fraction(c["env_steps"], cfg.lr_decay_steps)
                set_lrs(models.optims, [cfg.vf_lr, cfg.lr], frac)
                epis = sampler.sample(models.pol, max_steps=spi)
                traj = Traj.from_epis(epis, device=device)
                if models.obs_normalizer is not None:
                    models.obs_normalizer.update(traj["obs"])
                d_result = _discrim_update(cfg, models, expert, traj, gen)
                traj = ef.compute_pseudo_rews(traj, models.checkpoint["discrim"], kind=cfg.reward)
                pseudo_rew = float(traj["rews"].mean())
                traj = scale_rews(traj, models)
                traj = estimate(traj, models.train_args["vf"], cfg.gamma, cfg.lam)
                kwargs = cfg.train_kwargs(cfg.scheduled(frac, session.algo_state))
                result = ppo_clip.train(traj=traj, **models.train_args, **kwargs, generator=gen)
                steps_before = c["env_steps"]
                c["iteration"] += 1
                c["env_steps"] += traj.num_step
                c["episodes"] += len(completed_epis(epis))
                last = c["iteration"] == total_iters
                extra = _extra(d_result) | {"pseudo_rew": pseudo_rew}
                if session.evaluation_due(steps_before) and not last:
                    extra |= session.evaluate(models.pol)
                record = logger.log_iteration(iteration=c["iteration"], env_steps=c["env_steps"],
                                              episodes=c["episodes"], epis=logged_epis(cfg, epis), result=result,
                                              extra=extra)
                bar.update(traj.num_step)
                session.end_iteration(entries, last=last)
    return session.finish(models.pol, record)


Update = Callable[[Any, torch.Generator], TrainResult]


def _run_off_policy(cfg: SACConfig, models: Models, session: Session, reward: PseudoRewardModel, kind: str,
                    update: Update | None, env: Any) -> RunOutcome:
    """The off-policy loop with SAC on ``reward``'s rewards (``kind``); ``update(buffer, generator)``, if
    given, trains the reward model before each SAC update."""
    device = torch.device(cfg.device)
    buf = make_buffer(cfg, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    target = target_steps(cfg)
    source = RewardSource(buf, reward, kind)
    record: dict[str, float] = {}
    with EpiSampler(env, models.explore_pol, num_parallel=cfg.num_parallel, seed=cfg.seed,
                    timeout=sampler_timeout(cfg)) as sampler:
        entries = {**models.checkpoint, "buffer": buf, "generator": gen, "sampler": sampler}
        session.restore(entries)
        c = session.counters
        c.setdefault("pending", 0)
        with session.reporting(target) as (bar, logger):
            while c["env_steps"] < target:
                set_lrs(models.optims, [cfg.lr] * len(models.optims), lr_fraction(c["env_steps"], cfg.lr_decay_steps))
                pol = behaviour_pol(cfg, models, c["env_steps"])
                epis = sampler.sample(pol, max_steps=cfg.steps_per_iter)
                traj = ef.add_next_obs(Traj.from_epis(epis, device=device))
                buf.add(traj)
                steps_before = c["env_steps"]
                c["iteration"] += 1
                c["env_steps"] += traj.num_step
                c["episodes"] += len(completed_epis(epis))
                if c["env_steps"] >= cfg.learning_starts:
                    c["pending"] += traj.num_step
                result, extra = None, {}
                if c["pending"] >= cfg.train_freq:
                    extra = _extra(update(buf, gen)) if update is not None else {}
                    result = sac.train(traj=source, **models.train_args, **cfg.train_kwargs(),
                                       num_steps=int(c["pending"] * cfg.grad_ratio), nstep=False, generator=gen)
                    c["pending"] = 0
                last = c["env_steps"] >= target
                if session.evaluation_due(steps_before) and not last:
                    extra |= session.evaluate(models.pol)
                record = logger.log_iteration(iteration=c["iteration"], env_steps=c["env_steps"],
                                              episodes=c["episodes"], epis=completed_epis(epis), result=result,
                                              extra=extra)
                bar.update(traj.num_step)
                session.end_iteration(entries, last=last)
    return session.finish(models.pol, record)


def run_adversarial(cfg: AdversarialConfig, models: Models, session: Session) -> RunOutcome:
    """Train ``models`` (learner plus discriminator) as ``cfg`` says, with ``session``'s bookkeeping."""
    if cfg.steps_per_iter <= 0:
        raise ConfigError(f"{cfg.algo}: set steps_per_iter above 0 (whole-episode iterations are not supported)")
    expert = None
    if not isinstance(cfg, DIAYNConfig):
        expert = load_expert(cfg.expert, *_spaces(cfg.env)).to(torch.device(cfg.device))
    if isinstance(cfg, GAILConfig):
        return _run_on_policy(cfg, models, session, expert)  # type: ignore[arg-type]
    session.eval_env = sampler_env(cfg)

    def update(buf: Any, gen: torch.Generator) -> TrainResult:
        return _discrim_update(cfg, models, expert, buf, gen)

    return _run_off_policy(cfg, models, session, models.checkpoint["discrim"], _reward_kind(cfg), update,
                           sampler_env(cfg))


def train_on_reward(cfg: SACConfig, reward: PseudoRewardModel, logdir: str | Path, *, kind: str = "reward",
                    overwrite: bool = False, progress: bool = False, console: bool = False) -> RunOutcome:
    """Train a fresh SAC as ``cfg`` (a ``sac`` config) says, on ``reward``'s rewards instead of the env's.

    ``reward`` is e.g. AIRL's recovered :class:`~trajkit.discrims.StateReward`
    (:func:`recovered_reward`, or a ``StateReward`` with a saved ``state_dict``); it is
    not trained; ``kind`` picks its reward (an ``AIRLDiscrim``: ``"g"``, or ``"f"``, ``g`` with
    its learned shaping, the same optimal policies). Evaluations report the env's return,
    so they measure the transfer.
    """
    from trajkit.run.runner import prepare

    models = prepare(cfg)
    session = Session(cfg, Path(logdir), progress=progress, console=console).open(overwrite=overwrite)
    return _run_off_policy(cfg, models, session, reward, kind, None, cfg.env)


def _spaces(env_id: str) -> tuple[gym.Space, gym.Space]:
    from trajkit.run.runner import env_spaces

    return env_spaces(env_id)
