"""Recurrent PPO on partially observed tasks: trajkit against sb3-contrib RecurrentPPO, same machine, same run.

    python benchmarks/bench_rnn.py                            # CartPoleNoVel-v1, seeds 0 1 2, 100k steps
    python benchmarks/bench_rnn.py --seeds 0 --no-sb3         # trajkit only
    python benchmarks/bench_rnn.py --env PendulumNoVel-v1 --hp num_envs=4 --hp continuing=true
    python benchmarks/bench_rnn.py --algo r2d2_sac --env PendulumNoVel-v1   # R2D2-style SAC, 30k steps

An env whose ``ppo`` preset block is not recurrent gets ``--hp rnn=lstm``.

Per seed, one after the other on one torch thread:

- **trajkit LSTM PPO**: ``trajkit train ppo --env ENV`` (the preset: for
  ``CartPoleNoVel-v1`` an LSTM of 64 and a head of 64, 8 envs of 32 steps per
  iteration with continuing episodes, observation and reward normalization, rl-zoo's
  ppo_lstm settings), through the run layer.
- **trajkit MLP PPO**: the same config with ``rnn=none`` (the baseline that cannot
  remember; ``--no-mlp`` skips it).
- **sb3-contrib RecurrentPPO**: rl-zoo's ppo_lstm recipe. ``CartPoleNoVel-v1``: the
  recipe of the published ``sb3/ppo_lstm-CartPoleNoVel-v1`` model (8 envs x 32 steps,
  batch 256, 20 epochs, gamma 0.98, lambda 0.8, lr and clip decaying linearly from 1e-3
  and 0.2, VecNormalize of the observations, LSTM 64 with ReLU heads of 64, no
  orthogonal init). ``PendulumNoVel-v1``: ``hyperparams/ppo_lstm.yml`` (4 envs x 1024
  steps, 10 epochs, batch 64, gamma 0.9, lambda 0.95, lr 1e-3, gSDE resampled every 4
  steps, the default LSTM-256 policy).

With ``--algo r2d2_sac``: ``trajkit train r2d2_sac --env ENV`` (the preset: LSTM actor
and critics, sequence replay with burn-in) and, as the baseline without memory,
``trajkit train sac`` (MLPs) at the same steps; sb3-contrib has no recurrent SAC.

Each score is the mean of 10 deterministic evaluation episodes after the budget (the
run layer's, env seeds ``10000 + seed``); wall and CPU seconds include that evaluation
for both libraries.
Writes ``bench_out/rnn_ENV.json`` and prints a table with the per-seed wall-time ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajkit.run.presets import parse_overrides, resolve
from trajkit.run.runner import train

EVAL_SEED = 10_000


def _timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run_trajkit(env_id: str, seed: int, steps: int | None, hp: dict[str, Any], logdir: Path,
                algo: str = "ppo") -> dict[str, Any]:
    """``trajkit train ALGO`` with the preset (plus ``hp``) for ``seed``; its final evaluation and times."""
    cfg = resolve(algo, env_id, overrides=hp, seed=seed, **({"steps": steps} if steps else {}))
    out, wall, cpu = _timed(lambda: train(cfg, logdir, progress=False, console=False, overwrite=True))
    return {"steps": out.env_steps, "mean": out.eval_mean, "returns": out.eval_returns, "wall": wall, "cpu": cpu}


def _sb3_recipe(env_id: str) -> dict[str, Any]:
    """RecurrentPPO keyword arguments (schedules as ``("lin", v)``) and VecNormalize flags of the rl-zoo recipe."""
    from torch import nn

    if env_id == "CartPoleNoVel-v1":  # the recipe the published sb3/ppo_lstm-CartPoleNoVel-v1 model was trained with
        return {"n_envs": 8, "norm_obs": True, "kwargs": {
            "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20, "ent_coef": 0.0,
            "learning_rate": ("lin", 1e-3), "clip_range": ("lin", 0.2),
            "policy_kwargs": {"ortho_init": False, "activation_fn": nn.ReLU, "lstm_hidden_size": 64,
                              "enable_critic_lstm": True, "net_arch": {"pi": [64], "vf": [64]}}}}
    if env_id == "PendulumNoVel-v1":  # rl-zoo's hyperparams/ppo_lstm.yml (default policy: LSTM 256, gSDE)
        return {"n_envs": 4, "norm_obs": False, "kwargs": {
            "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9, "n_epochs": 10, "ent_coef": 0.0,
            "learning_rate": 1e-3, "clip_range": 0.2, "use_sde": True, "sde_sample_freq": 4}}
    raise SystemExit(f"no sb3-contrib recipe here for {env_id}: pass --no-sb3")


def run_sb3(env_id: str, seed: int, steps: int) -> dict[str, Any]:
    """sb3-contrib RecurrentPPO with rl-zoo's ppo_lstm recipe for ``env_id``; its final evaluation and times."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    r = _sb3_recipe(env_id)
    kwargs = {k: (lambda p, v=v[1]: p * v) if isinstance(v, tuple) else v for k, v in r["kwargs"].items()}

    def learn_and_evaluate() -> list[float]:
        venv = make_vec_env(env_id, n_envs=r["n_envs"], seed=seed)
        eval_env = make_vec_env(env_id, n_envs=1, seed=EVAL_SEED + seed)
        if r["norm_obs"]:
            venv = VecNormalize(venv, norm_obs=True, norm_reward=False)
            eval_env = VecNormalize(eval_env, norm_obs=True, norm_reward=False, training=False)
        model = RecurrentPPO("MlpLstmPolicy", venv, seed=seed, device="cpu", **kwargs)
        model.learn(total_timesteps=steps)
        if r["norm_obs"]:
            eval_env.obs_rms = venv.obs_rms
        rets, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True,
                                  return_episode_rewards=True)
        return [float(x) for x in rets]

    rets, wall, cpu = _timed(learn_and_evaluate)
    return {"steps": steps, "mean": float(np.mean(rets)), "returns": rets, "wall": wall, "cpu": cpu}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=["ppo", "r2d2_sac"], default="ppo")
    p.add_argument("--env", default="CartPoleNoVel-v1")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=None, help="env steps (default: the preset's)")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE",
                   help="preset overrides, as trajkit train --hp")
    p.add_argument("--no-sb3", action="store_true")
    p.add_argument("--no-mlp", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    hp: dict[str, Any] = dict(parse_overrides(args.hp))  # typed by field, as --hp is
    if args.algo == "r2d2_sac":
        run_r2d2(args, hp)
        return
    preset = resolve("ppo", args.env, overrides=hp)
    if preset.rnn == "none":  # an env without a recurrent preset block: an LSTM of the preset's sizes
        hp["rnn"] = "lstm"
    steps = args.steps or preset.steps
    root = Path("runs/bench_rnn") / args.env
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        lstm = run_trajkit(args.env, seed, steps, hp, root / f"lstm_s{seed}")
        rows.append({"run": "trajkit lstm", "seed": seed, **lstm})
        if not args.no_mlp:
            rows.append({"run": "trajkit mlp", "seed": seed,
                         **run_trajkit(args.env, seed, steps, {**hp, "rnn": "none", "seq_len": None, "burn_in": 0},
                                     root / f"mlp_s{seed}")})
        if not args.no_sb3:
            rows.append({"run": "sb3-contrib lstm", "seed": seed, **run_sb3(args.env, seed, steps)})
        print(*(f"{r['run']} seed {r['seed']}: {r['mean']:.1f} in {r['wall']:.0f} s" for r in rows[-3:]), sep="\n")
    print(f"\n{args.env}, {steps} steps, one torch thread")
    print(f"{'run':<18} {'seed':>4} {'return':>8} {'wall s':>7} {'cpu s':>7}")
    for r in rows:
        print(f"{r['run']:<18} {r['seed']:>4} {r['mean']:>8.1f} {r['wall']:>7.0f} {r['cpu']:>7.0f}")
    ours = {r["seed"]: r for r in rows if r["run"] == "trajkit lstm"}
    theirs = {r["seed"]: r for r in rows if r["run"] == "sb3-contrib lstm"}
    ratios = [ours[s]["wall"] / theirs[s]["wall"] for s in ours if s in theirs]
    if ratios:
        print("wall time trajkit / sb3-contrib per seed: " + ", ".join(f"{x:.2f}" for x in ratios)
              + f" (median {np.median(ratios):.2f})")
    out = args.out or Path("bench_out") / f"rnn_{args.env}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env": args.env, "steps": steps, "hp": hp, "rows": rows}, indent=2))
    print(f"wrote {out}")


def run_r2d2(args: argparse.Namespace, hp: dict[str, Any]) -> None:
    """R2D2-SAC (the preset) and, without memory, SAC's MLPs at the same steps, per seed; a table and a JSON file."""
    steps = args.steps or resolve("r2d2_sac", args.env, overrides=hp).steps
    root = Path("runs/bench_rnn") / f"r2d2_{args.env}"
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        rows.append({"run": "trajkit r2d2_sac", "seed": seed,
                     **run_trajkit(args.env, seed, steps, hp, root / f"r2d2_s{seed}", algo="r2d2_sac")})
        if not args.no_mlp:
            rows.append({"run": "trajkit sac (mlp)", "seed": seed,
                         **run_trajkit(args.env, seed, steps, {}, root / f"sac_s{seed}", algo="sac")})
        print(*(f"{r['run']} seed {r['seed']}: {r['mean']:.1f} in {r['wall']:.0f} s" for r in rows[-2:]), sep="\n")
    print(f"\n{args.env}, {steps} steps, one torch thread")
    for r in rows:
        print(f"{r['run']:<18} {r['seed']:>4} {r['mean']:>8.1f} {r['wall']:>7.0f} {r['cpu']:>7.0f}")
    out = args.out or Path("bench_out") / f"r2d2_{args.env}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env": args.env, "steps": steps, "hp": hp, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
