"""stable-baselines3 / sb3-contrib counterparts of trajkit's documented recipes, for ``results.py``.

Each runner takes the trajkit config that ``results.py`` trains (the preset) and builds
the peer algorithm with the same hyper-parameters (PPO: rl-zoo's CartPole recipe, which
the trajkit preset follows, with SB3's 8 envs x 32 steps). A run writes, in its log
directory, a ``progress.csv`` that ``trajkit plot`` reads (``env_steps``,
``return_mean`` over the last 100 training episodes, ``eval_return_mean`` at each
evaluation), a ``config.json`` (``algo`` is ``sb3-ALGO``, so plots label it apart) and
an ``eval.json`` like trajkit's. Evaluations: 10 deterministic episodes, the first env
reset seeded ``10000 + seed`` (trajkit's evaluation seed), as in trajkit runs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from trajkit.run.config import RunSettings

EVAL_SEED = 10_000


def make_env(env_id: str) -> gym.Env:
    """``gym.make(env_id)``, after importing the package that registers it (Bullet ids)."""
    from trajkit.envs.gym_env import import_registering_module

    import_registering_module(env_id)
    return gym.make(env_id)


def evaluate_sb3(model: Any, env_id: str, seed: int, episodes: int) -> list[float]:
    """Undiscounted returns of ``episodes`` deterministic episodes of an SB3 ``model``.

    A model trained under ``VecNormalize`` sees its observations normalized with the
    training statistics (frozen: evaluation does not update them)."""
    env = make_env(env_id)
    norm = model.get_vec_normalize_env()
    rets = []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + seed) if i == 0 else env.reset()
        done, ret = False, 0.0
        while not done:
            acs, _ = model.predict(obs if norm is None else norm.normalize_obs(obs), deterministic=True)
            obs, rew, term, trunc, _ = env.step(acs)
            ret += float(rew)
            done = term or trunc
        rets.append(ret)
    env.close()
    return rets


def _progress_callback(logdir: Path, cfg: RunSettings, every: int) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):  # type: ignore[misc]
        """Logs the last-100 training return every ``every`` steps and evaluates every ``eval_every`` steps."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, float]] = []
            self.next_log = every
            self.next_eval = cfg.eval_every or cfg.steps + 1

        def _on_step(self) -> bool:
            n = self.num_timesteps
            if n >= self.next_log:
                self.next_log += every
                buf = [info["r"] for info in self.model.ep_info_buffer]
                row = {"env_steps": n, "return_mean": float(np.mean(buf)) if buf else float("nan"),
                       "eval_return_mean": float("nan")}
                if n >= self.next_eval:
                    self.next_eval += cfg.eval_every
                    row["eval_return_mean"] = float(np.mean(evaluate_sb3(self.model, cfg.env, cfg.seed,
                                                                         cfg.eval_episodes)))
                self.rows.append(row)
            return True

    return Progress()


def _linear(v: float) -> Callable[[float], float]:
    return lambda progress_remaining: progress_remaining * v


def ppo(cfg: Any, env_id: str, seed: int) -> Any:
    """SB3 PPO with the preset's settings: ``num_envs`` envs x ``steps_per_iter / num_envs`` steps, epochs, batch,
    gamma, lambda, schedules, nets (activation, init, initial log-std), and ``VecNormalize`` for
    ``obs_norm`` / ``rew_norm`` (CartPole: rl-zoo's recipe, 8 envs x 32 steps)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from trajkit.run.models import ACTIVATIONS

    env = make_vec_env(lambda: make_env(env_id), n_envs=cfg.num_envs, seed=seed)
    if cfg.obs_norm or cfg.rew_norm:
        env = VecNormalize(env, norm_obs=cfg.obs_norm, norm_reward=cfg.rew_norm, gamma=cfg.gamma)
    t = cfg.train
    policy_kwargs = {"net_arch": list(cfg.hidden), "ortho_init": cfg.ortho_init, "log_std_init": cfg.log_std_init,
                     "activation_fn": ACTIVATIONS[cfg.activation]}
    return PPO("MlpPolicy", env, n_steps=cfg.steps_per_iter // cfg.num_envs, batch_size=t.batch_size,
               gae_lambda=cfg.lam, gamma=cfg.gamma, n_epochs=t.epoch, ent_coef=t.ent_coef,
               max_grad_norm=t.max_grad_norm, learning_rate=_linear(cfg.lr) if cfg.lr_decay_steps else cfg.lr,
               clip_range=_linear(t.clip_param) if cfg.clip_decay else t.clip_param,
               policy_kwargs=policy_kwargs, seed=seed, device="cpu", verbose=0)


def trpo(cfg: Any, env_id: str, seed: int) -> Any:
    """sb3-contrib TRPO with the preset's settings: one env, steps per iteration, KL bound, CG, value fitting."""
    from sb3_contrib import TRPO

    t = cfg.train
    return TRPO("MlpPolicy", make_env(env_id), n_steps=cfg.steps_per_iter, batch_size=t.vf_batch_size,
                gamma=cfg.gamma, gae_lambda=cfg.lam, target_kl=t.max_kl, cg_max_steps=t.cg_iters,
                cg_damping=t.cg_damping, line_search_max_iter=t.backtrack_steps, n_critic_updates=t.vf_epoch,
                learning_rate=cfg.vf_lr, normalize_advantage=True,
                policy_kwargs={"net_arch": list(cfg.hidden)}, seed=seed, device="cpu", verbose=0)


def _off_policy_kwargs(cfg: Any, seed: int) -> dict[str, Any]:
    return dict(learning_rate=cfg.lr, batch_size=cfg.train.batch_size, buffer_size=cfg.buffer_size,
                gamma=cfg.train.gamma, learning_starts=cfg.learning_starts, seed=seed, device="cpu", verbose=0,
                policy_kwargs={"net_arch": list(cfg.hidden)})


def sac(cfg: Any, env_id: str, seed: int) -> Any:
    """SB3 SAC with the preset's nets, lr, batch, buffer, warm-up, tau; a gradient step per env step."""
    from stable_baselines3 import SAC

    return SAC("MlpPolicy", make_env(env_id), tau=cfg.train.tau, train_freq=(1, "episode"), gradient_steps=-1,
               **_off_policy_kwargs(cfg, seed))


def _noisy(cls_name: str) -> Callable[[Any, str, int], Any]:
    def build(cfg: Any, env_id: str, seed: int) -> Any:
        import stable_baselines3
        from stable_baselines3.common.noise import NormalActionNoise

        env = make_env(env_id)
        ad = env.action_space.shape[0]
        scale = float(env.action_space.high[0])  # SB3 adds the noise in env units, trajkit in [-1, 1]
        noise = NormalActionNoise(np.zeros(ad), cfg.action_noise * scale * np.ones(ad))
        cls = getattr(stable_baselines3, cls_name)
        return cls("MlpPolicy", env, tau=cfg.train.tau, action_noise=noise, train_freq=(1, "episode"),
                   gradient_steps=-1, **_off_policy_kwargs(cfg, seed))

    build.__doc__ = f"SB3 {cls_name} with the preset's nets, lr, batch, buffer, warm-up, tau and Gaussian noise."
    return build


def dqn(cfg: Any, env_id: str, seed: int) -> Any:
    """SB3 DQN with the preset's nets, n-step targets, lr schedule, batch, exploration and update schedule.

    SB3 updates its target between training phases, every ``target_update_interval``
    env steps; the nearest match is Polyak averaging with the same tau every
    ``1 / grad_ratio`` env steps (trajkit: every gradient step). SB3 has no dueling head.
    """
    from stable_baselines3 import DQN

    kw = _off_policy_kwargs(cfg, seed)
    if cfg.lr_decay_steps:
        def lr(progress_remaining: float) -> float:
            return float(cfg.lr * max(0.0, 1 - (1 - progress_remaining) * cfg.steps / cfg.lr_decay_steps))

        kw["learning_rate"] = lr
    interval = max(1, round(cfg.train.target_update_interval / cfg.grad_ratio))
    return DQN("MlpPolicy", make_env(env_id), train_freq=cfg.train_freq,
               gradient_steps=int(cfg.train_freq * cfg.grad_ratio), target_update_interval=interval,
               tau=cfg.train.tau, n_steps=cfg.nstep, exploration_fraction=cfg.exploration_steps / cfg.steps,
               exploration_final_eps=cfg.eps_end, **kw)


#: trajkit algorithm -> the builder of its peer (algorithms without one are absent)
BUILDERS: dict[str, Callable[[Any, str, int], Any]] = {
    "ppo": ppo, "trpo": trpo, "sac": sac, "td3": _noisy("TD3"), "ddpg": _noisy("DDPG"), "dqn": dqn,
}


def run(cfg: RunSettings, logdir: Path) -> dict[str, Any]:
    """Train the peer of ``cfg`` for ``cfg.steps`` env steps into ``logdir``; its final evaluation."""
    import stable_baselines3

    logdir.mkdir(parents=True, exist_ok=True)
    model = BUILDERS[cfg.algo](cfg, cfg.env, cfg.seed)
    progress = _progress_callback(logdir, cfg, every=max(1, cfg.steps // 100))
    model.learn(total_timesteps=cfg.steps, callback=progress)
    rets = evaluate_sb3(model, cfg.env, cfg.seed, cfg.eval_episodes)
    with open(logdir / "progress.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["env_steps", "return_mean", "eval_return_mean"])
        w.writeheader()
        w.writerows(progress.rows)
        w.writerow({"env_steps": model.num_timesteps, "return_mean": float("nan"),
                    "eval_return_mean": float(np.mean(rets))})
    (logdir / "config.json").write_text(json.dumps(
        {"algo": f"sb3-{cfg.algo}", "env": cfg.env, "seed": cfg.seed, "steps": cfg.steps,
         "library": f"stable-baselines3 {stable_baselines3.__version__}"}, indent=2))
    out = {"env_steps": int(model.num_timesteps), "returns": rets, "mean": float(np.mean(rets)),
           "std": float(np.std(rets)), "seed": EVAL_SEED + cfg.seed}
    (logdir / "eval.json").write_text(json.dumps(out, indent=2))
    return out
