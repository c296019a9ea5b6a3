"""R2D2-style SAC (recurrent actor and critics over stored sequences) on a partially observed task, top to bottom.

    python examples/run_r2d2_sac.py                      # PendulumNoVel-v1, the preset, 30k steps
    python examples/run_r2d2_sac.py --hp rnn=gru --hp seq_len=40 --hp burn_in=4

Settings come from ``trajkit/run/presets/r2d2_sac.yaml``, the file ``trajkit train
r2d2_sac`` reads. Each iteration: sample ``steps_per_iter`` steps (uniform actions for the
first ``learning_starts``; episodes continue across iterations, and the sampler carries
the policy's hidden state and stores it per step as ``hs``), cut the pieces into
overlapping sequences of ``burn_in + seq_len`` steps with their start states
(``SeqReplayBuffer.add``), then take ``grad_ratio`` gradient steps per new step with
``r2d2_sac.train``: each draws sequences by priority, warms the states on the burn-in
steps, trains on the rest and sets the drawn sequences' priorities
(``ef.compute_seq_pris``). Logs to ``--logdir``, saves ``checkpoint.pt`` (``trajkit eval
LOGDIR`` rebuilds the recurrent policy) and prints a deterministic evaluation at the
end. See ``docs/recurrent.md``.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import finish, parse_run_args, save_run

import trajkit as tk
from trajkit.algos import r2d2_sac
from trajkit.logger import Logger, progress_bar
from trajkit.run.off_policy import behaviour_pol, make_seq_buffer
from trajkit.run.on_policy import completed_epis
from trajkit.run.r2d2_config import R2D2SACConfig
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    return parse_run_args("r2d2_sac", __doc__, "PendulumNoVel-v1", argv)


def run(args: argparse.Namespace, cfg: R2D2SACConfig) -> dict[str, float]:
    """Train as ``cfg`` says; returns the final evaluation and timing."""
    env = tk.GymEnv(cfg.env)
    models = build_models(cfg, env.observation_space, env.action_space)  # the models trajkit train builds
    a, t = models.train_args, cfg.train
    buf = make_seq_buffer(cfg, torch.device("cpu"), models.pol)  # sequences with the policy's start states
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = progress_bar(cfg.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, pending, start = 0, 0, 0, 0, time.time()
    with tk.EpiSampler(env, models.explore_pol, seed=cfg.seed, continuing=cfg.continuing) as sampler:
        while steps < cfg.steps:
            pol = behaviour_pol(cfg, models, steps)  # uniform actions during warm-up
            epis = sampler.sample(pol, max_steps=cfg.steps_per_iter)  # pieces of episodes, hs per step
            traj = tk.Traj.from_epis(epis)
            buf.add(traj)  # overlapping sequences with their start states
            steps += traj.num_step
            it += 1
            if steps >= cfg.learning_starts:
                pending += traj.num_step
            result = None
            if pending >= cfg.train_freq:
                result = r2d2_sac.train(
                    buffer=buf, pol=a["pol"], qf1=a["qf1"], qf2=a["qf2"], target_qf1=a["target_qf1"],
                    target_qf2=a["target_qf2"], log_alpha=a["log_alpha"], optim_pol=a["optim_pol"],
                    optim_qf=a["optim_qf"], optim_alpha=a["optim_alpha"], num_steps=int(pending * cfg.grad_ratio),
                    batch_size=t.batch_size, gamma=t.gamma, tau=t.tau, target_ent=t.target_ent,
                    per_beta=t.per_beta, per_eta=t.per_eta, generator=gen,
                )
                pending = 0
            n_epis += len(completed_epis(epis))
            # the logger joins continued pieces into whole episodes (it counts only finished ones)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis,
                                 epis=epis if cfg.continuing else completed_epis(epis), result=result)
            bar.update(traj.num_step)
    bar.close()
    logger.close()
    save_run(args.logdir, cfg, models.checkpoint, iteration=it, env_steps=steps, episodes=n_epis)
    return finish(args, cfg, models.pol, steps, start)


if __name__ == "__main__":
    run(*parse_args())  # type: ignore[arg-type]
