"""Adversarial imitation and skill discovery against their bars: GAIL, AIRL (reward transfer), DIAYN.

    python benchmarks/bench_adversarial_imitation.py                 # every part, seeds 0 1 2
    python benchmarks/bench_adversarial_imitation.py --only gail_cartpole --seeds 0

Parts (each a run-layer run with its preset, as ``trajkit train`` does it):

* ``gail_cartpole``: ``gail`` (PPO learner) from 10 CartPole-v1 expert episodes; bar 475.
* ``gail_pendulum``: ``gail_sac`` (SAC learner) from 10 Pendulum-v1 expert episodes; bar -300.
* ``airl``: ``airl`` on Pendulum-v1, then a fresh SAC (``sac`` preset, seed + 100) trained on the
  recovered reward alone (``adversarial.train_on_reward``); bar -300 for the fresh SAC.
* ``diayn``: ``diayn_sac`` with 8 skills on Pendulum-v1; the skill discriminator's accuracy
  on 40 fresh deterministic episodes (bar 0.9) and a PNG of each skill's states (angle
  against angular velocity).

Experts are trained with the ``sac``/``ppo`` presets and recorded once
(``trajkit.run.experts``); runs and their results (``bench.json`` per run directory) are
cached under ``--cache`` (default /tmp/imit_cache_b), so a rerun prints at once. The
figures are each run's final deterministic evaluation (10 episodes, env seeds apart from
training), env steps and wall time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajkit.checkpoint import load_checkpoint
from trajkit.run import resolve, to_values
from trajkit.run.adversarial import (
    TRANSFER_STEPS,
    build_adversarial,
    load_airl_discrim,
    recovered_reward,
    skill_accuracy,
    skill_rollouts,
    train_on_reward,
)
from trajkit.run.experts import expert_file, expert_return
from trajkit.run.presets import parse_overrides
from trajkit.run.runner import env_spaces, train

#: env steps of the fresh SAC trained on AIRL's recovered reward
FRESH_STEPS = TRANSFER_STEPS

BARS = {"gail_cartpole": 475.0, "gail_pendulum": -300.0, "airl": -300.0, "diayn": 0.9}


def cached(path: Path, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``path``'s JSON if it exists, else ``make()`` timed (``wall_s``) and written there."""
    if path.is_file():
        return dict(json.loads(path.read_text()))
    start = time.time()
    out = make()
    out.setdefault("wall_s", time.time() - start)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def run_dir(cache: Path, cfg: Any) -> Path:
    """``cache/runs/ALGO_ENV_sSEED_HASH``: the hash of every setting, so a changed preset or ``--hp`` reruns."""
    key = hashlib.sha1(json.dumps(to_values(cfg), sort_keys=True).encode()).hexdigest()[:8]
    return cache / "runs" / f"{cfg.algo}_{cfg.env}_s{cfg.seed}_{key}"


def imitation_run(algo: str, env: str, seed: int, cache: Path, hp: dict[str, str]) -> dict[str, Any]:
    expert = expert_file(env, cache_dir=cache)
    cfg = resolve(algo, env, {"expert": str(expert), **hp}, seed=seed)
    logdir = run_dir(cache, cfg)

    def make() -> dict[str, Any]:
        out = train(cfg, logdir, overwrite=True, progress=False, console=False)
        return {"eval_mean": out.eval_mean, "eval_std": float(np.std(out.eval_returns)), "env_steps": out.env_steps,
                "returns": out.eval_returns}

    return {**cached(logdir / "bench.json", make), "expert_return": expert_return(expert)}


def airl_run(seed: int, cache: Path, fresh_steps: int, hp: dict[str, str], kind: str = "g") -> dict[str, Any]:
    first = imitation_run("airl", "Pendulum-v1", seed, cache, hp)
    airl_dir = run_dir(cache, resolve("airl", "Pendulum-v1", {"expert": str(expert_file("Pendulum-v1",
                                                                                         cache_dir=cache)), **hp},
                                      seed=seed))
    cfg = resolve("sac", "Pendulum-v1", seed=seed + 100, steps=fresh_steps)
    logdir = airl_dir.with_name(airl_dir.name + ("_fresh_sac_" if kind == "g" else "_fresh_sac_f_") + str(fresh_steps))
    reward = recovered_reward(airl_dir) if kind == "g" else load_airl_discrim(airl_dir)

    def make() -> dict[str, Any]:
        out = train_on_reward(cfg, reward, logdir, kind="reward" if kind == "g" else "f", overwrite=True)
        return {"eval_mean": out.eval_mean, "eval_std": float(np.std(out.eval_returns)), "env_steps": out.env_steps,
                "returns": out.eval_returns}

    fresh = cached(logdir / "bench.json", make)
    return {"airl_policy": first["eval_mean"], "airl_steps": first["env_steps"], "airl_wall_s": first["wall_s"],
            "expert_return": first["expert_return"], **fresh}


def diayn_run(seed: int, cache: Path, hp: dict[str, str]) -> dict[str, Any]:
    cfg = resolve("diayn_sac", "Pendulum-v1", hp, seed=seed)
    logdir = run_dir(cache, cfg)
    png = logdir / "skills.png"

    def make() -> dict[str, Any]:
        out = train(cfg, logdir, overwrite=True, progress=False, console=False)
        models = build_adversarial(cfg, *env_spaces(cfg.env))  # type: ignore[arg-type]
        discrim = models.checkpoint["discrim"]
        load_checkpoint(out.checkpoint, {"pol": models.pol, "discrim": discrim}, strict=False)
        traj = skill_rollouts(cfg.env, models.pol, cfg.num_skills, 40, seed=30_000 + seed)
        plot_skills(traj, cfg.num_skills, png)
        return {"accuracy": skill_accuracy(traj, discrim), "env_steps": out.env_steps, "png": str(png)}

    return cached(logdir / "bench.json", make)


def plot_skills(traj: Any, num_skills: int, path: Path) -> None:
    """Pendulum states (angle, angular velocity) of each skill's episodes, one colour per skill."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs = traj["next_obs"]
    theta = torch.atan2(obs[:, 1], obs[:, 0]).numpy()
    skill = obs[:, -num_skills:].argmax(-1).numpy()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    cmap = plt.get_cmap("tab10")
    for k in range(num_skills):
        m = skill == k
        axes[0].scatter(theta[m], obs[m, 2].numpy(), s=3, color=cmap(k), label=f"skill {k}")
    axes[0].set_xlabel("angle (rad, 0 = upright)")
    axes[0].set_ylabel("angular velocity")
    axes[0].legend(markerscale=4, fontsize=7, ncol=2)
    counts = np.array([[np.sum((skill == k) & (np.digitize(theta, np.linspace(-np.pi, np.pi, 13)) == b))
                        for b in range(1, 13)] for k in range(num_skills)])
    axes[1].imshow(counts / np.maximum(counts.sum(1, keepdims=True), 1), aspect="auto", cmap="viridis")
    axes[1].set_xlabel("angle bin (-pi .. pi)")
    axes[1].set_ylabel("skill")
    axes[1].set_title("fraction of each skill's states per angle bin")
    fig.suptitle("DIAYN skills on Pendulum-v1 (40 fresh deterministic episodes)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=list(BARS), action="append", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--cache", type=Path, default=Path("/tmp/imit_cache_b"))
    p.add_argument("--fresh-steps", type=int, default=FRESH_STEPS, help="env steps of the fresh SAC on AIRL's reward")
    p.add_argument("--fresh-reward", choices=["g", "f"], default="g",
                   help="the fresh SAC's reward: AIRL's g(s), or f (g with its learned shaping)")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", help="override a setting of the runs")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    parts = args.only or list(BARS)
    hp = parse_overrides(args.hp)
    for part in parts:
        for seed in args.seeds:
            if part == "gail_cartpole":
                r = imitation_run("gail", "CartPole-v1", seed, args.cache, hp)
                line = f"return {r['eval_mean']:.1f} +- {r['eval_std']:.1f} (expert {r['expert_return']:.1f})"
            elif part == "gail_pendulum":
                r = imitation_run("gail_sac", "Pendulum-v1", seed, args.cache, hp)
                line = f"return {r['eval_mean']:.1f} +- {r['eval_std']:.1f} (expert {r['expert_return']:.1f})"
            elif part == "airl":
                r = airl_run(seed, args.cache, args.fresh_steps, hp, args.fresh_reward)
                line = (f"fresh SAC on the recovered reward: {r['eval_mean']:.1f} +- {r['eval_std']:.1f} "
                        f"(AIRL's own policy {r['airl_policy']:.1f} after {r['airl_steps']} steps, "
                        f"{r['airl_wall_s']:.0f}s; expert {r['expert_return']:.1f})")
            else:
                r = diayn_run(seed, args.cache, hp)
                line = f"skill accuracy {r['accuracy']:.3f} on fresh rollouts; plot {r['png']}"
            value = r["accuracy"] if part == "diayn" else r["eval_mean"]
            ok = "meets" if value >= BARS[part] else "BELOW"
            print(f"{part:<14} seed {seed}: {line}; {r['env_steps']} env steps, {r['wall_s']:.0f}s "
                  f"[{ok} bar {BARS[part]}]", flush=True)


if __name__ == "__main__":
    main()
