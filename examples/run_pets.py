"""PETS (probabilistic ensemble, CEM, trajectory sampling) with trajkit, top to bottom.

    python examples/run_pets.py                          # Pendulum-v1, 2000 steps, the tuned preset
    python examples/run_pets.py --seed 1 --hp num_samples=200 --hp horizon=25

Settings come from ``trajkit/run/presets/pets.yaml``, the file ``trajkit train pets``
reads. Uniform random actions for the first ``learning_starts`` steps; then, every
``steps_per_iter`` steps: add the new steps (with their ``next_obs``) to the replay
buffer, refit the ensemble on everything with ``dynamics.train`` (held-out early
stopping), and act with ``MPCPol``, which plans through the ensemble at every step.
Prints a deterministic evaluation at the end (the planner's cost per action is in
``docs/algorithms/model_based.md``).
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import finish, parse_run_args, save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import dynamics
from trajkit.logger import Logger, progress_bar
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    return parse_run_args("pets", __doc__, "Pendulum-v1", argv)


def run(args: argparse.Namespace, cfg: tk.run.model_based_config.MPCConfig) -> dict[str, float]:
    """Train as ``cfg`` says (PETS or MPC); returns the final evaluation and timing."""
    env = tk.GymEnv(cfg.env)
    models = build_models(cfg, env.observation_space, env.action_space)  # ensemble, optimizer, MPCPol
    model, optim = models.train_args["model"], models.train_args["optim"]
    buf = tk.ReplayBuffer(cfg.buffer_size, keys=["obs", "acs", "rews"])
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = progress_bar(cfg.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    with tk.EpiSampler(env, models.pol, num_parallel=cfg.num_parallel, seed=cfg.seed, continuing=True) as sampler:
        while steps < cfg.steps:
            pol = models.warmup_pol if steps < cfg.learning_starts else models.pol
            assert pol is not None
            epis = sampler.sample(pol, max_steps=min(cfg.steps_per_iter, cfg.steps - steps))
            traj = ef.add_next_obs(tk.Traj.from_epis(epis))  # an episode's last next_obs is its final_obs
            buf.add(traj)
            steps += traj.num_step
            it += 1
            result = None
            if steps >= cfg.learning_starts:
                result = dynamics.train(traj=buf, model=model, optim=optim, **cfg.train_kwargs(), generator=gen)
            done = [e for e in epis if not e["sampler_cut"]]
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result)
            bar.update(traj.num_step)
    bar.close()
    logger.close()
    save_run(args.logdir, cfg, models.checkpoint, iteration=it, env_steps=steps, episodes=n_epis)
    return finish(args, cfg, models.pol, steps, start)


if __name__ == "__main__":
    run(*parse_args())  # type: ignore[arg-type]
