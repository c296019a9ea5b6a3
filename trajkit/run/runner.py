"""Running a config: check everything, build the models, open the session, run the family's loop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import torch

from trajkit.envs import GymEnv
from trajkit.run.adversarial_config import AdversarialSettings
from trajkit.run.config import OffPolicyConfig, OnPolicyConfig, RunSettings
from trajkit.run.fields import ConfigError
from trajkit.run.model_based_config import ModelBasedConfig
from trajkit.run.models import Models
from trajkit.run.registry import build_models
from trajkit.run.session import EvalHook, RunOutcome, Session, seed_everything


def env_spaces(env_id: str) -> tuple[gym.Space, gym.Space]:
    """The observation and action spaces of ``env_id`` (a wrong id raises gymnasium's error, with its hint)."""
    probe = GymEnv(env_id)
    try:
        return probe.observation_space, probe.action_space
    finally:
        probe.close()


def check_device(device: str) -> torch.device:
    """``device`` as a torch device that exists here."""
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available on this machine")
    return dev


def prepare(cfg: RunSettings) -> Models:
    """Check the env and device, seed the global RNGs from ``cfg.seed`` and build the models."""
    check_device(cfg.device)
    ob_space, ac_space = env_spaces(cfg.env)
    seed_everything(cfg.seed)
    return build_models(cfg, ob_space, ac_space)


def train(
    cfg: RunSettings,
    logdir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    console: bool = True,
    columns: Sequence[str] | str | None = None,
    on_eval: EvalHook | None = None,
) -> RunOutcome:
    """Train ``cfg`` into ``logdir`` (``config.json``, ``progress.csv``, ``tb/``, ``checkpoint.pt``, ``eval.json``).

    Nothing is written before the config, env, device, models and directory have been
    checked. ``resume`` continues exactly from the directory's checkpoint (same settings,
    more ``steps``); ``overwrite`` replaces trajkit's files in a used directory.
    ``on_eval(env_steps, mean_return)`` is called after every evaluation (``eval_every``
    and the final one) and may raise to stop the run (Optuna's pruning does).
    """
    models = prepare(cfg)
    session = Session(
        cfg,
        Path(logdir),
        resume=resume,
        progress=progress,
        console=console,
        columns=columns,
        on_eval=on_eval,
    ).open(overwrite=overwrite)
    if isinstance(cfg, AdversarialSettings):  # before the learner families they extend
        from trajkit.run.adversarial import run_adversarial

        return run_adversarial(cfg, models, session)  # type: ignore[arg-type]
    if isinstance(cfg, OnPolicyConfig):
        from trajkit.run.on_policy import run_on_policy

        return run_on_policy(cfg, models, session)
    if isinstance(cfg, OffPolicyConfig):
        from trajkit.run.off_policy import run_off_policy

        return run_off_policy(cfg, models, session)
    if isinstance(cfg, ModelBasedConfig):
        from trajkit.run.model_based import run_model_based

        return run_model_based(cfg, models, session)
    raise ConfigError(f"no training loop for the {cfg.family!r} family of {cfg.algo!r}")
