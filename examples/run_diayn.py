"""DIAYN (diversity is all you need): skills without a reward, top to bottom.

    python examples/run_diayn.py                        # Pendulum-v1, 8 skills
    python examples/run_diayn.py --hp num_skills=4 --seed 1

Settings come from ``trajkit/run/presets/diayn_sac.yaml``, the file ``trajkit train
diayn_sac`` reads. The env is ``SkillEnv(env, num_skills)``: each episode draws a skill
``z`` uniformly and appends its one-hot to the observations. Each iteration adds SAC's
steps to the replay buffer, takes ``discrim_steps`` cross-entropy steps of the skill
discriminator ``q(z|s')`` on replay batches (``diayn.train``), then ``sac.train`` on a
``RewardSource`` giving every replay batch DIAYN's ``log q(z|s') - log p(z)`` from the
current discriminator. The env's reward is never used for learning.

It ends by printing the discriminator's accuracy on fresh deterministic episodes (every
skill), then the deterministic evaluation of the env's return as every example does.
The skills are saved with the run (``LOGDIR/checkpoint.pt``: ``pol`` and ``discrim``); a
skill ``k`` is a starting point for a task: fix it with ``reset(options={"skill": k})``
and fine-tune the policy on the task's reward.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from _common import parse_run_args, save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import diayn, sac
from trajkit.algos.reward_source import RewardSource
from trajkit.evaluation import EVAL_SEED
from trajkit.logger import Logger, progress_bar
from trajkit.run.adversarial import skill_accuracy, skill_env, skill_rollouts
from trajkit.run.off_policy import behaviour_pol, make_buffer
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    return parse_run_args("diayn_sac", __doc__, "Pendulum-v1", argv)


def run(args: argparse.Namespace, cfg: Any) -> dict[str, float]:
    """Train skills as ``cfg`` says; returns the skill accuracy, the env return and timing."""
    env = tk.GymEnv(cfg.env)
    models = build_models(cfg, env.observation_space, env.action_space)  # SAC over skill observations + q(z|s')
    a, disc, opt_d = models.train_args, models.checkpoint["discrim"], models.checkpoint["optim_discrim"]
    buf = make_buffer(cfg, torch.device("cpu"))
    source = RewardSource(buf, disc, "diayn")  # every SAC batch: rews <- log q(z|s') - log p(z)
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = progress_bar(cfg.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    def make_env() -> tk.GymEnv:
        return skill_env(cfg.env, cfg.num_skills)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    with tk.EpiSampler(make_env, models.explore_pol, seed=cfg.seed) as sampler:
        while steps < cfg.steps:
            pol = behaviour_pol(cfg, models, steps)  # uniform actions before learning_starts
            epis = sampler.sample(pol, max_steps=cfg.steps_per_iter)
            traj = ef.add_next_obs(tk.Traj.from_epis(epis))
            buf.add(traj)
            steps, it = steps + traj.num_step, it + 1
            result, extra = None, {}
            if steps >= cfg.learning_starts:
                d = diayn.train(traj=buf, discrim=disc, optim_discrim=opt_d, num_steps=cfg.discrim_steps,
                                **cfg.discrim_train_kwargs(), generator=gen)
                result = sac.train(traj=source, **a, **cfg.train_kwargs(),
                                   num_steps=int(traj.num_step * cfg.grad_ratio), generator=gen)
                extra = d.summary()
            done = [e for e in epis if not e["sampler_cut"]]
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result,
                                 extra=extra)
            bar.update(traj.num_step)
    bar.close()
    logger.close()
    save_run(Path(args.logdir), cfg, models.checkpoint, env_steps=steps)  # the skills: pol and discrim
    train_time = time.time() - start

    fresh = skill_rollouts(cfg.env, models.pol, cfg.num_skills, 5 * cfg.num_skills, seed=EVAL_SEED + cfg.seed)
    acc = skill_accuracy(fresh, disc)
    rets = tk.evaluate(make_env, models.pol, num_epis=args.eval_epis, seed=EVAL_SEED + cfg.seed)
    print(f"steps {steps}, {train_time:.0f}s; skill accuracy on {fresh.num_epi} fresh episodes: {acc:.3f}; "
          f"deterministic eval over {args.eval_epis} episodes (env return, skills drawn): "
          f"{rets.mean():.1f} +- {rets.std():.1f}")
    return {"steps": steps, "skill_acc": acc, "eval_mean": float(rets.mean()), "train_time": train_time}


if __name__ == "__main__":
    run(*parse_args())
