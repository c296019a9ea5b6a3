"""Evaluating what ``trajkit train`` left: a checkpoint file or a run directory, optionally on video."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trajkit.checkpoint import load_checkpoint, read_checkpoint_data
from trajkit.evaluation import EVAL_SEED, evaluate
from trajkit.pols import BasePol
from trajkit.run.fields import ConfigError
from trajkit.run.imitation import BC_POLICY, make_learner
from trajkit.run.presets import from_values
from trajkit.run.registry import build_models
from trajkit.run.runner import env_spaces
from trajkit.run.session import CHECKPOINT_NAME


def checkpoint_path(path: str | Path) -> Path:
    """``path`` itself, or the checkpoint inside a run directory."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
        if not p.exists():
            raise FileNotFoundError(f"{path} is a directory without a {CHECKPOINT_NAME} (not a 'trajkit train' run?)")
    return p


def load_policy(path: str | Path, env: str | None = None) -> tuple[BasePol, dict[str, Any]]:
    """The policy saved by ``trajkit train`` (file or run directory), rebuilt from its config, and the config.

    A ``trajkit train bc`` directory (``policy.pt`` and ``eval.json``) is rebuilt from its settings.
    """
    run = Path(path)
    if run.is_dir() and not (run / CHECKPOINT_NAME).exists() and (run / BC_POLICY).exists():
        return _load_bc_policy(run, env)
    ckpt = checkpoint_path(path)
    data = read_checkpoint_data(ckpt)
    if "config" not in data:
        raise ConfigError(
            f"{ckpt} holds no run config (entries: {sorted(data)}), so its policy cannot be rebuilt: "
            "'trajkit eval' takes checkpoints written by 'trajkit train' or the examples"
        )
    values = dict(data["config"])
    cfg = from_values(values["algo"], {**values, "env": env or values["env"], "device": "cpu"})
    models = build_models(cfg, *env_spaces(cfg.env))
    load_checkpoint(ckpt, {"pol": models.pol}, strict=False)
    return models.pol, values


def _load_bc_policy(run: Path, env: str | None) -> tuple[BasePol, dict[str, Any]]:
    info_path = run / "eval.json"
    if not info_path.exists():
        raise FileNotFoundError(f"{run} has a {BC_POLICY} but no eval.json, so its policy cannot be rebuilt")
    info = json.loads(info_path.read_text())
    settings = info["settings"]
    pol = make_learner(settings["pol"], env_spaces(env or info["env"]), tuple(settings["hidden"]))
    load_checkpoint(run / BC_POLICY, {"pol": pol})
    return pol, {"algo": "bc", "env": info["env"], "seed": info["seed"]}


def policy_env(config: dict[str, Any], env: str | None = None) -> Any:
    """What a run's policy acts in: ``env`` or the run's env id, or (``diayn_sac``) a factory of
    that env with the skill appended to its observations, as the run's own evaluations had it."""
    env_id = env or config["env"]
    if config["algo"] == "diayn_sac":
        from trajkit.run.adversarial import skill_env

        k = int(config["num_skills"])
        return lambda: skill_env(env_id, k)
    return env_id


def recording_env(env_id: str, video_dir: str | Path, num_skills: int | None = None) -> Callable[[], Any]:
    """A factory of ``env_id`` rendering RGB frames in gymnasium's ``RecordVideo`` (every episode to ``video_dir``).

    ``num_skills``: a ``diayn_sac`` policy's env, the skill appended outside the recorder.

    A factory, so the sampler builds the env itself and closes it at the end, which
    writes the last video. Writing needs ``moviepy`` (and pygame for the classic-control
    envs): the ``video`` extra, ``pip install "trajkit[video]"``.
    """
    import gymnasium as gym

    try:
        import moviepy  # noqa: F401
    except ImportError:
        raise ImportError('--video needs moviepy: pip install "trajkit[video]" (or pip install moviepy)') from None
    from trajkit.envs import GymEnv, SkillEnv

    def make() -> GymEnv:
        inner = gym.make(env_id, render_mode="rgb_array")
        recorded = gym.wrappers.RecordVideo(inner, str(video_dir), episode_trigger=lambda _: True)
        return GymEnv(recorded if num_skills is None else SkillEnv(recorded, num_skills))

    return make


def evaluate_run(
    path: str | Path,
    *,
    env: str | None = None,
    episodes: int = 10,
    deterministic: bool = True,
    seed: int | None = None,
    num_parallel: int = 1,
    video_dir: str | Path | None = None,
) -> np.ndarray:
    """Returns ``(episodes,)`` of the policy in a checkpoint or run directory (``video_dir``: record them).

    ``seed`` defaults to the run's own evaluation seed (``EVAL_SEED + its training seed``),
    so the first episodes are those of the run's ``eval.json``.
    """
    pol, config = load_policy(path, env)
    seed = EVAL_SEED + int(config["seed"]) if seed is None else seed
    target: Any = (policy_env(config, env) if video_dir is None
                   else recording_env(env or config["env"], video_dir, config.get("num_skills")))
    return evaluate(target, pol, num_epis=episodes, seed=seed, deterministic=deterministic,
                    num_parallel=num_parallel if video_dir is None else 1)
