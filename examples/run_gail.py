"""GAIL (generative adversarial imitation) from 10 expert episodes, top to bottom.

    python examples/run_gail.py                                # CartPole-v1, PPO learner
    python examples/run_gail.py --env Pendulum-v1              # SAC learner (gail_sac preset)
    python examples/run_gail.py --expert expert.npz --hp gp_coef=10

Settings come from ``trajkit/run/presets/gail.yaml`` (PPO learner) or ``gail_sac.yaml``
(SAC learner, the default for Box actions), the files ``trajkit train gail|gail_sac``
reads. Without ``--expert``, an expert is trained with the ``ppo``/``sac`` preset and 10
deterministic episodes of it are recorded (``trajkit.run.experts``, cached under
/tmp/imit_cache_b). Each iteration:

* PPO learner: sample ``steps_per_iter`` steps; ``discrim_steps`` discriminator steps
  (``gail.train``: expert rows labelled 1, the agent's 0); replace the rewards by
  ``-log(1 - D(s, a))`` (``ef.compute_pseudo_rews``); estimate and ``ppo_clip.train``.
* SAC learner: add the steps to the replay buffer; ``discrim_steps`` discriminator steps
  against the expert on replay batches; ``sac.train`` on a ``RewardSource``, which
  rewards every replay batch with the current discriminator.

The env's own rewards are never used for learning; the printed evaluation is the env's
return of the learned policy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from _common import finish, parse_run_args, save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import gail, ppo_clip, sac
from trajkit.algos.reward_source import RewardSource
from trajkit.logger import Logger, progress_bar
from trajkit.run.adversarial import load_expert
from trajkit.run.experts import expert_file, expert_return
from trajkit.run.off_policy import behaviour_pol, make_buffer
from trajkit.run.on_policy import estimate, lr_fraction, set_lrs
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", default="CartPole-v1")
    pre.add_argument("--algo", choices=["gail", "gail_sac"], default=None)
    pre.add_argument("--expert", default=None)
    known, _ = pre.parse_known_args(argv)
    discrete = isinstance(gym.make(known.env).action_space, gym.spaces.Discrete)
    algo = known.algo or ("gail" if discrete else "gail_sac")
    expert = known.expert or str(expert_file(known.env))  # trains and records an expert once, then cached

    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--algo", choices=["gail", "gail_sac"], default=algo, help="learner: PPO (gail) or SAC")
        p.add_argument("--expert", default=None, help="Traj file of expert episodes (default: train and record one)")

    args, cfg = parse_run_args(algo, __doc__, "CartPole-v1", [*(argv or sys.argv[1:]), "--hp", f"expert={expert}"],
                               extra)
    print(f"expert {cfg.expert}: mean return {expert_return(cfg.expert):.1f}")  # type: ignore[attr-defined]
    return args, cfg


def run_ppo_learner(cfg: Any, models: Any, expert: tk.Traj, bar: Any, logger: Logger) -> int:
    """GAIL with PPO: pseudo-rewards of each iteration's fresh Traj; returns the env steps taken."""
    a, disc, opt_d = models.train_args, models.checkpoint["discrim"], models.checkpoint["optim_discrim"]
    gen = torch.Generator().manual_seed(cfg.seed)
    steps, it, n_epis = 0, 0, 0
    with tk.EpiSampler(cfg.env, models.pol, seed=cfg.seed) as sampler:
        while steps < cfg.steps:
            frac = lr_fraction(steps, cfg.lr_decay_steps)
            set_lrs(models.optims, [cfg.vf_lr, cfg.lr], frac)
            epis = sampler.sample(models.pol, max_steps=cfg.steps_per_iter)
            traj = tk.Traj.from_epis(epis)
            d = gail.train(expert=expert, agent=traj, discrim=disc, optim_discrim=opt_d, num_steps=cfg.discrim_steps,
                           **cfg.discrim_train_kwargs(), generator=gen)
            traj = ef.compute_pseudo_rews(traj, disc, kind=cfg.reward)  # rews <- -log(1 - D); env_rews kept
            traj = estimate(traj, a["vf"], cfg.gamma, cfg.lam)
            result = ppo_clip.train(traj=traj, **a, **cfg.train_kwargs(cfg.scheduled(frac, {})), generator=gen)
            steps, it = steps + traj.num_step, it + 1
            done = [e for e in epis if not e["sampler_cut"]]  # their rews are the env's, logged as returns
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result,
                                 extra={**d.summary(), "pseudo_rew": float(traj["rews"].mean())})
            bar.update(traj.num_step)
    return steps


def run_sac_learner(cfg: Any, models: Any, expert: tk.Traj, bar: Any, logger: Logger) -> int:
    """GAIL with SAC: replay batches rewarded by the current discriminator; returns the env steps taken."""
    a, disc, opt_d = models.train_args, models.checkpoint["discrim"], models.checkpoint["optim_discrim"]
    buf = make_buffer(cfg, torch.device("cpu"))
    source = RewardSource(buf, disc, cfg.reward)  # every SAC batch: rews <- -log(1 - D) of the current D
    gen = torch.Generator().manual_seed(cfg.seed)
    steps, it, n_epis = 0, 0, 0
    with tk.EpiSampler(cfg.env, models.explore_pol, seed=cfg.seed) as sampler:
        while steps < cfg.steps:
            pol = behaviour_pol(cfg, models, steps)  # uniform actions before learning_starts
            epis = sampler.sample(pol, max_steps=cfg.steps_per_iter)
            traj = ef.add_next_obs(tk.Traj.from_epis(epis))
            buf.add(traj)
            steps, it = steps + traj.num_step, it + 1
            result, extra = None, {}
            if steps >= cfg.learning_starts:
                d = gail.train(expert=expert, agent=buf, discrim=disc, optim_discrim=opt_d,
                               num_steps=cfg.discrim_steps, **cfg.discrim_train_kwargs(), generator=gen)
                result = sac.train(traj=source, **a, **cfg.train_kwargs(),
                                   num_steps=int(traj.num_step * cfg.grad_ratio), generator=gen)
                extra = d.summary()
            done = [e for e in epis if not e["sampler_cut"]]
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result,
                                 extra=extra)
            bar.update(traj.num_step)
    return steps


def run(args: argparse.Namespace, cfg: tk.run.RunSettings) -> dict[str, float]:
    """Train as ``cfg`` says from ``args.expert``; returns the final evaluation and timing."""
    env = tk.GymEnv(cfg.env)
    models = build_models(cfg, env.observation_space, env.action_space)  # learner's models plus discrim
    expert = load_expert(cfg.expert, env.observation_space, env.action_space)  # with next_obs, terminals
    bar = progress_bar(cfg.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)
    start = time.time()
    loop = run_ppo_learner if cfg.algo == "gail" else run_sac_learner
    steps = loop(cfg, models, expert, bar, logger)
    bar.close()
    logger.close()
    save_run(Path(args.logdir), cfg, models.checkpoint, env_steps=steps)
    return finish(args, cfg, models.pol, steps, start)


if __name__ == "__main__":
    run(*parse_args())  # type: ignore[arg-type]
