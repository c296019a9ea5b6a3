"""Recurrent PPO (LSTM or GRU policy and value function) on a partially observed task, top to bottom.

    python examples/run_ppo_rnn.py                                   # CartPoleNoVel-v1, the preset, 100k steps
    python examples/run_ppo_rnn.py --hp rnn=gru --hp seq_len=32 --hp burn_in=8   # GRU, chunks with burn-in
    python examples/run_ppo_rnn.py --env PendulumNoVel-v1            # the preset's Pendulum block, 100k steps

Settings come from ``trajkit/run/presets/ppo.yaml`` (its ``CartPoleNoVel-v1`` block:
``rnn: lstm``, rl-zoo's ppo_lstm recipe: 8 envs of 32 steps per iteration, episodes
continuing across iterations, observations and rewards normalized; its
``PendulumNoVel-v1`` block: 4 envs of 1024 steps, chunks of 32 steps), the file ``trajkit
train ppo`` reads; another ``--env`` needs ``--hp rnn=lstm`` (or ``gru``) to be
recurrent. Each iteration: sample (the sampler carries each env's hidden state across
steps and iterations and stores it per step as ``hs``) -> Traj -> rewards scaled
(``rew_norm``) -> the value function's carried states (``ef.carry_hs``) -> estimators
(the recurrent value function runs each piece of an episode as a sequence) -> ``ppo_clip.train``,
which detects the recurrent models and trains on sequence batches: whole episodes, or
chunks of ``seq_len`` steps after ``burn_in`` warm-up steps (then the value function's
states ``vf_hs`` are computed first). Logs to ``--logdir``, saves ``checkpoint.pt``
(``trajkit eval LOGDIR`` rebuilds the recurrent policy) and prints a deterministic
evaluation at the end. See ``docs/recurrent.md``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from _common import finish, parse_run_args, save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import ppo_clip
from trajkit.logger import Logger, progress_bar
from trajkit.run.on_policy import completed_epis, logged_epis, lr_fraction, on_policy_sampler, set_lrs
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    return parse_run_args("ppo", __doc__, "CartPoleNoVel-v1", argv)


def run(args: argparse.Namespace, cfg: tk.run.PPOConfig) -> dict[str, float]:
    """Train as ``cfg`` says; returns the final evaluation and timing."""
    env = tk.GymEnv(cfg.env)
    models = build_models(cfg, env.observation_space, env.action_space)  # the models trajkit train builds
    pol, vf = models.train_args["pol"], models.train_args["vf"]
    optim_pol, optim_vf = models.train_args["optim_pol"], models.train_args["optim_vf"]
    if not pol.recurrent:
        raise SystemExit(f"{cfg.env}'s preset has no recurrent model: pass --hp rnn=lstm (or gru)")
    gen = torch.Generator().manual_seed(cfg.seed)
    total_iters = math.ceil(cfg.steps / cfg.steps_per_iter)
    bar = progress_bar(total_iters * cfg.steps_per_iter, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)
    t = cfg.train

    steps, it, n_epis, start = 0, 0, 0, time.time()
    vf_carried = None  # the value function's state of each env's episode in progress (continuing)
    with on_policy_sampler(cfg, pol) as sampler:  # num_envs envs per worker, episodes continuing or not
        while it < total_iters:
            frac = lr_fraction(steps, cfg.lr_decay_steps)
            set_lrs([optim_pol, optim_vf], [cfg.lr, cfg.vf_lr], frac)

            epis = sampler.sample(pol, max_steps=cfg.steps_per_iter)  # each step stores the policy's hs
            traj = tk.Traj.from_epis(epis)
            if models.obs_normalizer is not None:
                models.obs_normalizer.update(traj["obs"])
            if models.rew_scaler is not None:  # rew_norm: rewards divided by the running std of returns
                models.rew_scaler.update(traj)
                traj = ef.scale_rews(traj, models.rew_scaler)
            if cfg.continuing:  # a continued piece starts from the vf state its previous piece ended in
                traj, vf_carried = ef.carry_hs(traj, vf, vf_carried)
            traj = ef.compute_vs(traj, vf)  # each piece as one sequence; final_vs with its own state
            traj = ef.compute_rets(traj, cfg.gamma)
            traj = ef.compute_advs(traj, cfg.gamma, cfg.lam)
            traj = ef.centerize_advs(traj)
            traj = ef.compute_h_masks(traj)  # 1 at each episode's first step
            if t.seq_len is not None and "vf_hs" not in traj:  # chunks start mid-episode: the vf's states there
                traj = ef.compute_hs(traj, vf, key="vf_hs")

            result = ppo_clip.train(
                traj=traj, pol=pol, vf=vf, optim_pol=optim_pol, optim_vf=optim_vf,
                epoch=t.epoch, batch_size=t.batch_size,
                clip_param=t.clip_param * (frac if cfg.clip_decay else 1.0),
                ent_coef=t.ent_coef, vf_clip_param=t.vf_clip_param, max_grad_norm=t.max_grad_norm,
                target_kl=t.target_kl, seq_len=t.seq_len, burn_in=t.burn_in, generator=gen,
            )

            steps += traj.num_step
            it += 1
            n_epis += len(completed_epis(epis))
            # the logger joins continued pieces into whole episodes (it counts only finished ones)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=logged_epis(cfg, epis),
                                 result=result)
            bar.update(traj.num_step)
    bar.close()
    logger.close()
    save_run(args.logdir, cfg, models.checkpoint, iteration=it, env_steps=steps, episodes=n_epis)

    return finish(args, cfg, pol, steps, start)


if __name__ == "__main__":
    run(*parse_args())  # type: ignore[arg-type]
