"""AIRL (adversarial inverse RL): recover a reward from 10 expert episodes, then train a fresh SAC on it.

    python examples/run_airl.py                         # Pendulum-v1
    python examples/run_airl.py --expert expert.npz --seed 1

Settings come from ``trajkit/run/presets/airl.yaml`` (the file ``trajkit train airl``
reads) and, for the fresh policy, ``sac.yaml``. Without ``--expert``, an expert is
trained with the ``sac`` preset and 10 deterministic episodes of it are recorded
(``trajkit.run.experts``, cached under /tmp/imit_cache_b).

Phase 1, AIRL: each iteration adds SAC's steps to the replay buffer, takes
``discrim_steps`` steps of ``airl.train`` (logits ``f(s, a, s') - log pi(a|s)`` with
``f = g(s) + gamma h(s') - h(s)``, expert against replay batches), then ``sac.train`` on
a ``RewardSource`` giving every replay batch the current ``f``. The recovered reward
``g(s)`` is saved to ``LOGDIR/reward.pt`` (a ``StateReward`` state_dict).

Phase 2, transfer: a fresh SAC (new networks, new replay buffer, seed ``seed + 100``)
learns from ``g(s)`` alone; the printed evaluation is its env return.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import finish, parse_run_args, save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import airl, sac
from trajkit.algos.reward_source import RewardSource
from trajkit.discrims import StateReward
from trajkit.logger import Logger
from trajkit.run import resolve
from trajkit.run.adversarial import TRANSFER_STEPS, load_expert
from trajkit.run.experts import expert_file, expert_return
from trajkit.run.off_policy import behaviour_pol, make_buffer
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", default="Pendulum-v1")
    pre.add_argument("--expert", default=None)
    known, _ = pre.parse_known_args(argv)
    expert = known.expert or str(expert_file(known.env))  # trains and records an expert once, then cached

    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--expert", default=None, help="Traj file of expert episodes (default: train and record one)")
        p.add_argument("--fresh-steps", type=int, default=TRANSFER_STEPS,
                       help=f"the fresh SAC's env steps (default {TRANSFER_STEPS}, as in docs/algorithms/airl.md)")

    args, cfg = parse_run_args("airl", __doc__, "Pendulum-v1", [*(argv or sys.argv[1:]), "--hp", f"expert={expert}"],
                               extra)
    print(f"expert {expert}: mean return {expert_return(expert):.1f}")
    return args, cfg


def sac_loop(cfg: Any, models: Any, source_of: Any, update: Any, logger: Logger) -> int:
    """SAC from the replay buffer, every batch rewarded by ``source_of(buffer)``; ``update(buffer)`` runs before
    each SAC update (the discriminator's step, or nothing). Returns the env steps taken."""
    buf = make_buffer(cfg, torch.device("cpu"))
    source = source_of(buf)
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
                extra = update(buf, gen)
                result = sac.train(traj=source, **models.train_args, **cfg.train_kwargs(),
                                   num_steps=int(traj.num_step * cfg.grad_ratio), generator=gen)
            done = [e for e in epis if not e["sampler_cut"]]  # env returns, for the log only
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result,
                                 extra=extra)
    logger.close()
    return steps


def run(args: argparse.Namespace, cfg: Any) -> dict[str, float]:
    """AIRL as ``cfg`` says, then a fresh SAC on the recovered reward; returns the fresh policy's evaluation."""
    env = tk.GymEnv(cfg.env)
    console = None if args.no_progress else print
    start = time.time()

    # phase 1: AIRL, SAC trained on f of the current discriminator
    models = build_models(cfg, env.observation_space, env.action_space)  # SAC's models plus discrim (g, h)
    expert = load_expert(cfg.expert, env.observation_space, env.action_space)  # with next_obs, terminals
    disc, opt_d = models.checkpoint["discrim"], models.checkpoint["optim_discrim"]

    def airl_step(buf: Any, gen: torch.Generator) -> dict[str, float]:
        d = airl.train(expert=expert, agent=buf, discrim=disc, pol=models.pol, optim_discrim=opt_d,
                       num_steps=cfg.discrim_steps, **cfg.discrim_train_kwargs(), generator=gen)
        return d.summary()

    steps = sac_loop(cfg, models, lambda buf: RewardSource(buf, disc, "f"), airl_step,
                     Logger(Path(args.logdir) / "airl", console=console))
    save_run(Path(args.logdir), cfg, models.checkpoint, env_steps=steps)
    reward_path = Path(args.logdir) / "reward.pt"
    torch.save(disc.g.state_dict(), reward_path)  # the recovered reward g(s)
    airl_eval = tk.evaluate(cfg.env, models.pol, num_epis=args.eval_epis, seed=tk.evaluation.EVAL_SEED + cfg.seed)
    print(f"AIRL policy after {steps} steps: {airl_eval.mean():.1f}; recovered reward saved to {reward_path}")

    # phase 2: a fresh SAC that sees only the recovered reward, loaded from the file
    reward = StateReward(env.observation_space, cfg.discrim_hidden)
    reward.load_state_dict(torch.load(reward_path))
    fresh_cfg = resolve("sac", cfg.env, steps=args.fresh_steps, seed=cfg.seed + 100)
    fresh = build_models(fresh_cfg, env.observation_space, env.action_space)
    fresh_steps = sac_loop(fresh_cfg, fresh, lambda buf: RewardSource(buf, reward, "reward"),
                           lambda buf, gen: {}, Logger(Path(args.logdir) / "fresh", console=console))
    return finish(args, fresh_cfg, fresh.pol, steps + fresh_steps, start)


if __name__ == "__main__":
    run(*parse_args())
