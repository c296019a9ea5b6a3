"""TD3 (twin critics, delayed actor updates, target policy smoothing) with trajkit, top to bottom.

    python examples/run_td3.py                               # Pendulum-v1, the tuned preset
    python examples/run_td3.py --seed 1 --hp lr=3e-4 --hp prioritized=true

Settings come from ``trajkit/run/presets/td3.yaml``, the file ``trajkit train td3`` reads.
Each iteration: sample with the behaviour policy (uniform actions for the first
``learning_starts`` steps, then the exploration policy), add the steps with their
``next_obs`` (and n-step returns) to the replay buffer, and once ``train_freq`` new steps
have arrived take ``grad_ratio`` gradient steps per new step with ``td3.train``. Logs
every iteration to ``--logdir`` (``progress.csv``, TensorBoard events in ``tb/``), saves
``checkpoint.pt`` (``trajkit eval LOGDIR`` reads it) and prints a deterministic evaluation at the end.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import finish, parse_run_args, save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import td3
from trajkit.logger import Logger, progress_bar
from trajkit.run.off_policy import behaviour_pol, make_buffer
from trajkit.run.on_policy import lr_fraction, set_lrs
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    return parse_run_args("td3", __doc__, "Pendulum-v1", argv)


def run(args: argparse.Namespace, cfg: tk.run.config.TD3Config) -> dict[str, float]:
    """Train as ``cfg`` says; returns the final evaluation and timing."""
    env = tk.GymEnv(cfg.env)
    models = build_models(cfg, env.observation_space, env.action_space)  # the models trajkit train builds
    a, t = models.train_args, cfg.train
    buf = make_buffer(cfg, torch.device("cpu"))
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = progress_bar(cfg.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, pending, start = 0, 0, 0, 0, time.time()
    with tk.EpiSampler(env, models.explore_pol, num_parallel=cfg.num_parallel, seed=cfg.seed) as sampler:
        while steps < cfg.steps:
            set_lrs(models.optims, [cfg.lr] * len(models.optims), lr_fraction(steps, cfg.lr_decay_steps))
            pol = behaviour_pol(cfg, models, steps)  # warm-up, epsilon schedule or fresh noise
            if cfg.epis_per_iter:
                epis = sampler.sample(pol, max_epis=cfg.epis_per_iter)
            else:
                epis = sampler.sample(pol, max_steps=cfg.steps_per_iter)
            traj = ef.add_next_obs(tk.Traj.from_epis(epis))
            if cfg.nstep > 1:
                traj = ef.compute_nstep_rets(traj, t.gamma, cfg.nstep)
            buf.add(traj)
            steps += traj.num_step
            it += 1
            if steps >= cfg.learning_starts:  # warm-up steps are never "new"
                pending += traj.num_step
            result = None
            if pending >= cfg.train_freq:
                num_steps = int(pending * cfg.grad_ratio)
                result = td3.train(
                    traj=buf, pol=a["pol"], qf1=a["qf1"], qf2=a["qf2"], target_pol=a["target_pol"],
                    target_qf1=a["target_qf1"], target_qf2=a["target_qf2"], optim_pol=a["optim_pol"],
                    optim_qf=a["optim_qf"], num_steps=num_steps, batch_size=t.batch_size, gamma=t.gamma,
                    tau=t.tau, policy_delay=t.policy_delay, target_noise=t.target_noise,
                    target_noise_clip=t.target_noise_clip, per_beta=t.per_beta, nstep=cfg.nstep > 1,
                    generator=gen,
                )
                pending = 0
            done = [e for e in epis if not e["sampler_cut"]]  # episodes cut by max_steps would bias returns
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result)
            bar.update(traj.num_step)
    bar.close()
    logger.close()
    save_run(args.logdir, cfg, models.checkpoint, iteration=it, env_steps=steps, episodes=n_epis)
    return finish(args, cfg, models.pol, steps, start)


if __name__ == "__main__":
    run(*parse_args())  # type: ignore[arg-type]
