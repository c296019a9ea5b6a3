"""The imitation family of the run layer: behaviour cloning, DAgger and teacher distillation.

Settings are typed dataclasses read from ``presets/imitation.yaml`` (one section per
algorithm, a ``default`` block and per-env overrides). The loops here sample (the
run layer may; ``algos.*.train`` never does): :func:`clone` trains a fresh policy on
expert data, :func:`run_dagger` rolls out the learner and labels its states with an
expert callable, :func:`distill` rolls out a student and matches its teacher.
:func:`train_bc_run` is what ``trajkit train bc --expert FILE`` runs, and
:func:`record_checkpoint` what ``trajkit record`` runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Self

import gymnasium as gym
import torch
import yaml

from trajkit.algos import behavior_clone, dagger, on_pol_teacher_distill
from trajkit.checkpoint import save_checkpoint
from trajkit.evaluation import EVAL_SEED, evaluate
from trajkit.expert_data import as_expert_traj, record_epis
from trajkit.pols import BasePol, CategoricalPol, DeterministicPol, GaussianPol, SquashedGaussianPol
from trajkit.run.fields import ConfigError
from trajkit.run.runner import env_spaces
from trajkit.samplers import EpiSampler
from trajkit.traj import Traj, concat


def _preset(section: str, env: str) -> dict[str, Any]:
    data = yaml.safe_load(resources.files("trajkit.run").joinpath("presets", "imitation.yaml").read_text())
    block = data[section]
    return {**block["default"], **(block.get("envs") or {}).get(env, {})}


def _coerce(section: str, name: str, kind: Any, value: Any) -> Any:
    """``value`` as the field's type (``int``, ``float``, ``str``, ``tuple[int, ...]``); ConfigError if not."""
    kind = str(kind)
    try:
        if kind.startswith("tuple"):
            items = value if isinstance(value, list | tuple) else [value]
            out: Any = tuple(int(x) for x in items)
            if not out or min(out) < 1:
                raise ValueError("widths must be positive")
            return out
        if kind == "int":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError("not an integer")
            return int(float(value))
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError("not a number")
            return float(value)
        return str(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{section} setting {name}={value!r} is not a valid {kind} ({e})") from None


class _Settings:
    """Settings of one imitation algorithm; their values live only in ``presets/imitation.yaml``."""

    section: ClassVar[str] = ""

    @classmethod
    def for_env(cls, env: str, **overrides: Any) -> Self:
        """The preset's settings for ``env`` with ``overrides``; ConfigError on an unknown name."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(f"unknown {cls.section} setting(s) {unknown}; known: {sorted(names)}")
        values = {**_preset(cls.section, env), **overrides}
        types = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: _coerce(cls.section, k, types[k], v) for k, v in values.items()})


@dataclass(frozen=True)
class BCSettings(_Settings):
    """Behaviour cloning: the learner (``pol``: auto, categorical, gaussian, deterministic,
    squashed_gaussian; ``hidden`` widths) and ``behavior_clone.train``'s ``epoch``,
    ``batch_size``, ``loss``, with Adam at ``lr``."""

    section: ClassVar[str] = "bc"
    pol: str
    hidden: tuple[int, ...]
    lr: float
    epoch: int
    batch_size: int
    loss: str


@dataclass(frozen=True)
class DAggerSettings(_Settings):
    """DAgger: ``rounds`` of ``epis_per_round`` learner episodes, each followed by
    ``dagger.train`` (``epoch``, ``batch_size``, Adam at ``lr``) on all data so far."""

    section: ClassVar[str] = "dagger"
    hidden: tuple[int, ...]
    lr: float
    rounds: int
    epis_per_round: int
    epoch: int
    batch_size: int


@dataclass(frozen=True)
class DistillSettings(_Settings):
    """Distillation: a student of ``hidden`` widths, ``iterations`` of ``steps_per_iter``
    student steps (episodes continue across iterations), each followed by
    ``on_pol_teacher_distill.train`` on all student data so far."""

    section: ClassVar[str] = "distill"
    hidden: tuple[int, ...]
    lr: float
    iterations: int
    steps_per_iter: int
    epoch: int
    batch_size: int


#: the policy file ``trajkit train bc`` writes beside its ``eval.json``
BC_POLICY = "policy.pt"

POL_KINDS: dict[str, Callable[..., BasePol]] = {
    "categorical": CategoricalPol.for_env,
    "gaussian": GaussianPol.for_env,
    "deterministic": DeterministicPol.for_env,
    "squashed_gaussian": SquashedGaussianPol.for_env,
}


def make_learner(kind: str, spaces: tuple[gym.Space, gym.Space], hidden: tuple[int, ...]) -> BasePol:
    """A fresh learner policy: ``kind`` one of :data:`POL_KINDS` or ``auto`` (categorical for
    Discrete actions, deterministic for Box)."""
    if kind == "auto":
        kind = "categorical" if isinstance(spaces[1], gym.spaces.Discrete) else "deterministic"
    if kind not in POL_KINDS:
        raise ConfigError(f"pol must be 'auto' or one of {sorted(POL_KINDS)}, got {kind!r}")
    return POL_KINDS[kind](spaces, hidden=hidden)


def clone(env: str, expert: Traj | str | Path, settings: BCSettings, *, seed: int = 0) -> BasePol:
    """A new policy for ``env`` trained by behaviour cloning on ``expert`` as ``settings`` say."""
    torch.manual_seed(seed)
    pol = make_learner(settings.pol, env_spaces(env), settings.hidden)
    optim = torch.optim.Adam(pol.parameters(), settings.lr)
    behavior_clone.train(traj=as_expert_traj(expert), pol=pol, optim_pol=optim, epoch=settings.epoch,
                         batch_size=settings.batch_size, loss=settings.loss, generator=seed)
    return pol


def run_dagger(env: str, expert: dagger.Expert, settings: DAggerSettings, *, seed: int = 0,
               eval_epis: int = 10) -> list[float]:
    """DAgger from a fresh categorical/deterministic learner; the mean deterministic return after each round.

    Round ``r``: sample ``epis_per_round`` episodes with the learner (stochastic; the
    untrained learner in round 0), label their states with ``expert``, aggregate, retrain.
    """
    torch.manual_seed(seed)
    pol = make_learner("auto", env_spaces(env), settings.hidden)
    optim = torch.optim.Adam(pol.parameters(), settings.lr)
    gen = torch.Generator().manual_seed(seed)
    data: Traj | None = None
    returns = []
    with EpiSampler(env, pol, seed=seed) as sampler:
        for _ in range(settings.rounds):
            with torch.no_grad():
                traj = Traj.from_epis(sampler.sample(pol, max_epis=settings.epis_per_round))
            data = dagger.aggregate(data, dagger.label(traj, expert))
            dagger.train(traj=data, pol=pol, optim_pol=optim, epoch=settings.epoch, batch_size=settings.batch_size,
                         generator=gen)
            returns.append(float(evaluate(env, pol, num_epis=eval_epis, seed=EVAL_SEED).mean()))
    return returns


def distill(env: str, teacher: BasePol, settings: DistillSettings, *, seed: int = 0) -> tuple[BasePol, int]:
    """A student of ``teacher``'s class with ``settings.hidden`` widths, distilled on its own states;
    returns it and the env steps it took."""
    torch.manual_seed(seed)
    kinds = {SquashedGaussianPol: "squashed_gaussian", GaussianPol: "gaussian", CategoricalPol: "categorical"}
    kind = kinds.get(type(teacher))
    if kind is None:
        raise ConfigError(f"distill builds students for {[k.__name__ for k in kinds]} teachers, "
                          f"got {type(teacher).__name__}")
    student = make_learner(kind, env_spaces(env), settings.hidden)
    optim = torch.optim.Adam(student.parameters(), settings.lr)
    gen = torch.Generator().manual_seed(seed)
    parts: list[Traj] = []
    steps = 0
    # continuing: an episode cut at steps_per_iter goes on in the next iteration, so short
    # iterations still show the student whole episodes (swing-up and balance alike)
    with EpiSampler(env, student, seed=seed, continuing=True) as sampler:
        for _ in range(settings.iterations):
            with torch.no_grad():
                parts.append(Traj.from_epis(sampler.sample(student, max_steps=settings.steps_per_iter)))
            steps += parts[-1].num_step
            on_pol_teacher_distill.train(traj=concat(parts), student=student, teacher=teacher, optim=optim,
                                         epoch=settings.epoch, batch_size=settings.batch_size, generator=gen)
    return student, steps


def train_bc_run(*, expert: str | Path, env: str, settings: BCSettings, seed: int, logdir: str | Path,
                 eval_episodes: int = 10) -> list[float]:
    """``trajkit train bc``: clone ``expert`` (a Traj file) into a new policy, save ``logdir/policy.pt``
    and ``logdir/eval.json`` (``trajkit eval LOGDIR`` rebuilds the policy from both); returns the
    deterministic evaluation returns."""
    pol = clone(env, expert, settings, seed=seed)
    out = Path(logdir)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / BC_POLICY, {"pol": pol})
    rets = [float(r) for r in evaluate(env, pol, num_epis=eval_episodes, seed=EVAL_SEED + seed)]
    (out / "eval.json").write_text(json.dumps({"algo": "bc", "env": env, "seed": seed, "expert": str(expert),
                                               "settings": asdict(settings), "returns": rets}, indent=1))
    return rets


def record_checkpoint(path: str | Path, *, env: str | None, episodes: int, output: str | Path, seed: int = 0,
                      stochastic: bool = False) -> Traj:
    """``trajkit record``: ``episodes`` episodes of the policy of a ``trajkit train`` run, saved to ``output``."""
    from trajkit.run.evaluate import load_policy, policy_env

    pol, config = load_policy(path, env)
    return record_epis(policy_env(config, env), pol, episodes, seed=seed, deterministic=not stochastic, path=output)


__all__ = ["BCSettings", "DAggerSettings", "DistillSettings", "clone", "distill", "make_learner",
           "record_checkpoint", "run_dagger", "train_bc_run"]
