"""Hyper-parameter search with Optuna (the ``tune`` extra): ``trajkit tune ALGO --env ID``.

Each trial resolves the algorithm's preset for the env, samples the preset's ``search``
block, and trains into ``LOGDIR/trial_N`` with evaluations every ``eval_every`` env steps,
reported to Optuna so its median pruner can stop poor trials early. The study lives in
``LOGDIR/study.db`` (SQLite), so a killed search resumes where it stopped (a trial that
was running when it was killed is marked failed and run again as a new trial, with fresh suggestions), and the
best trial's full config is written to ``LOGDIR/best.yaml``, which ``trajkit train
--config`` accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trajkit.run.fields import ConfigError
from trajkit.run.presets import resolve, search_space, to_values

STUDY_FILE = "study.db"
BEST_FILE = "best.yaml"


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError('trajkit tune needs Optuna: pip install "trajkit[tune]" (or pip install optuna)') from None
    return optuna


def suggest_values(trial: Any, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One value per setting of ``space`` (``{name: {type: float|int|categorical, ...}}``), from ``trial``."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec.get("type")
        if kind == "float":
            out[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
        elif kind == "int":
            out[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        elif kind == "categorical":
            out[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            raise ConfigError(f"search space entry {name!r}: type must be float, int or categorical, got {kind!r}")
    return out


@dataclass
class TuneOutcome:
    """The finished study's best trial: its number, mean evaluation return, settings and config file."""

    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_config: Path
    num_complete: int
    num_pruned: int


def _check_same_search(study: Any, settings: dict[str, Any]) -> None:
    """A resumed study must run its trials as before: refuse other steps, seed, evaluation or overrides."""
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", settings)
    elif saved != settings:
        diff = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
        raise ConfigError(f"the study in this logdir was run with other settings (study vs now: {diff}); "
                          "use another --logdir")


def _fail_stale(study: Any, optuna: Any) -> None:
    """Trials left running by a killed search can never finish: mark them failed."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)


def tune(
    algo: str,
    env: str,
    *,
    trials: int,
    steps: int,
    logdir: str | Path,
    seed: int = 0,
    eval_every: int | None = None,
    eval_episodes: int = 5,
    overrides: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> TuneOutcome:
    """Run (or resume) ``trials`` trials of ``algo`` on ``env``, ``steps`` env steps each; write the best config.

    ``eval_every`` (default ``steps // 4``) sets how often a trial is evaluated and may be
    pruned; the objective is the mean return of the last evaluation.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a positive integer, got {trials!r}")
    optuna = _import_optuna()
    from trajkit.run.runner import train

    space = search_space(algo)
    if not space:
        raise ConfigError(f"the {algo} preset has no 'search' block to tune")
    every = eval_every or max(1, steps // 4)
    base = dict(overrides or {})
    resolve(algo, env, base, steps=steps, seed=seed)  # fail before the study exists
    root = Path(logdir)
    root.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=f"{algo}_{env}",
        storage=f"sqlite:///{root / STUDY_FILE}",
        load_if_exists=True,
        direction="maximize",
        # no pruning before 3 trials have finished, nor in the first half of a trial (early evaluations are noisy)
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=steps // 2),
    )
    _check_same_search(study, {"steps": steps, "seed": seed, "eval_every": every, "eval_episodes": eval_episodes,
                               "overrides": {k: str(v) for k, v in base.items()}})
    _fail_stale(study, optuna)
    # a resumed search must not replay the suggestions it already made: the sampler's seed
    # moves on with the trials stored (a fresh search and a resumed one are each reproducible)
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.get_trials(deepcopy=False)))

    def objective(trial: Any) -> float:
        cfg = resolve(algo, env, {**base, **suggest_values(trial, space)}, steps=steps, seed=seed,
                      eval_every=every, eval_episodes=eval_episodes)

        def report(env_steps: int, mean: float) -> None:
            if env_steps >= cfg.steps:  # the final evaluation is the objective, never a reason to prune
                return
            trial.report(mean, env_steps)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at {env_steps} env steps (mean return {mean:.1f})")

        out = train(cfg, root / f"trial_{trial.number}", overwrite=True, progress=progress, console=False,
                    on_eval=report)
        return out.eval_mean

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = trials - len(study.get_trials(deepcopy=False, states=done))
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, catch=())
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"no trial of the study in {root / STUDY_FILE} completed")
    best = study.best_trial
    cfg = resolve(algo, env, {**base, **best.params}, steps=steps, seed=seed)
    path = root / BEST_FILE
    path.write_text(yaml.safe_dump(to_values(cfg), sort_keys=False))
    pruned = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
    return TuneOutcome(best.number, float(best.value), dict(best.params), path, len(complete), len(pruned))
