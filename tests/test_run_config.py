"""The run layer's configs and presets: typed fields in step with train(), presets as the one source, --hp parsing."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trajkit.run import ALGOS, ConfigError, preset_envs, resolve, to_values
from trajkit.run.config import OffPolicyConfig, OnPolicyConfig
from trajkit.run.fields import field_types
from trajkit.run.presets import load_config_file, preset_values, search_space
from trajkit.run.registry import REGISTRY

#: train() keyword arguments the loops supply themselves (data, models, optimizers, derived flags)
LOOP_SUPPLIED = {
    "traj", "pol", "vf", "qf", "qf1", "qf2", "target_pol", "target_qf", "target_qf1", "target_qf2",
    "optim_pol", "optim_vf", "optim_qf", "optim_alpha", "log_alpha", "generator", "num_steps", "nstep",
    "model", "optim", "buffer",
}
ENV = {"ppo": "CartPole-v1", "ppo_kl": "CartPole-v1", "trpo": "CartPole-v1", "vpg": "CartPole-v1",
       "dqn": "CartPole-v1", "sac": "Pendulum-v1", "td3": "Pendulum-v1", "ddpg": "Pendulum-v1",
       "qtopt": "Pendulum-v1", "mpc": "Pendulum-v1", "pets": "Pendulum-v1", "mbpo": "Pendulum-v1",
       "gail": "CartPole-v1", "gail_sac": "Pendulum-v1", "airl": "Pendulum-v1", "diayn_sac": "Pendulum-v1",
       "r2d2_sac": "PendulumNoVel-v1"}


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_train_fields_are_exactly_the_keyword_arguments_of_train(algo: str) -> None:
    cls = ALGOS[algo]
    assert REGISTRY[algo].config is cls
    train_fn = REGISTRY[algo].train
    params = inspect.signature(train_fn).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    hyper = {n for n in params if n not in LOOP_SUPPLIED}
    train_cls = field_types(cls)["train"]
    fields = field_types(train_cls)
    assert set(fields) == hyper, f"{algo}: config {sorted(fields)} vs train() {sorted(hyper)}"
    for f in dataclasses.fields(train_cls):  # annotations as written (both modules use postponed annotations)
        assert f.type == params[f.name].annotation, f"{algo}.{f.name}: {f.type} vs {params[f.name].annotation}"


def test_every_config_is_registered_once() -> None:
    assert set(REGISTRY) == set(ALGOS)


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_every_preset_resolves_to_a_checked_config(algo: str) -> None:
    for env in [*preset_envs(algo), "SomeOtherEnv-v0"]:
        cfg = resolve(algo, env)
        assert cfg.algo == algo and cfg.env == env and cfg.steps > 0
    assert search_space(algo), f"{algo} has no search space"
    for name in search_space(algo):
        resolve(algo, ENV[algo], {name: preset_lookup(algo, name)})  # every searched name is a setting


def preset_lookup(algo: str, name: str) -> object:
    values = preset_values(algo, ENV[algo])
    return values[name] if name in values else values["train"][name]


def test_the_cartpole_preset_is_the_measured_recipe() -> None:
    cfg = resolve("ppo", "CartPole-v1")
    assert isinstance(cfg, OnPolicyConfig)
    assert (cfg.steps_per_iter, cfg.gamma, cfg.lam, cfg.lr_decay_steps) == (256, 0.98, 0.8, 100_000)
    assert (cfg.train.epoch, cfg.train.batch_size) == (20, 256)
    other = resolve("ppo", "Acrobot-v1")
    assert other.steps_per_iter == 2048  # type: ignore[attr-defined]


def test_overrides_are_parsed_by_field_type() -> None:
    cfg = resolve("ppo", "CartPole-v1", {"epoch": "5", "train.batch_size": "32", "hidden": "32,32",
                                         "target_kl": "none", "obs_norm": "true", "lr": "1e-3"}, seed=4)
    assert cfg.train.epoch == 5 and cfg.train.batch_size == 32 and cfg.train.target_kl is None
    assert cfg.hidden == [32, 32] and cfg.obs_norm is True and cfg.lr == 1e-3 and cfg.seed == 4  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"gama": "0.9"}, "did you mean 'gamma'"),
        ({"epcoh": "3"}, "did you mean 'epoch'"),
        ({"gamma": "1.01"}, "gamma must be <= 1.0"),
        ({"lam": "-0.1"}, "lam must be >= 0.0"),
        ({"lr": "nan"}, "lr must be finite"),
        ({"batch_size": "16.5"}, "expected an integer"),
        ({"epoch": "0"}, "train.epoch must be >= 1"),
        ({"clip_param": "-0.2"}, "clip_param must be >= 0.0"),
        ({"clip_param": "none"}, "none is not allowed"),
        ({"steps_per_iter": "0"}, "steps_per_iter must be >= 1"),
        ({"steps": "0"}, "steps must be >= 1"),
        ({"steps": "-5"}, "steps must be >= 1"),
        ({"checkpoint_every": "-1"}, "checkpoint_every must be >= 0"),
        ({"obs_norm": "maybe"}, "expected true or false"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(override: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve("ppo", "CartPole-v1", override)


def test_off_policy_cross_field_checks() -> None:
    with pytest.raises(ConfigError, match="exactly one of steps_per_iter and epis_per_iter"):
        resolve("td3", "Pendulum-v1", {"epis_per_iter": 1})
    with pytest.raises(ConfigError, match="no gradient step"):
        resolve("sac", "Pendulum-v1", {"steps_per_iter": 1, "grad_ratio": 0.5})
    with pytest.raises(ConfigError, match="cem_elite"):
        resolve("qtopt", "Pendulum-v1", {"cem_elite": 100})
    with pytest.raises(ConfigError, match="one of 'gaussian' | 'ou'"):
        resolve("ddpg", "Pendulum-v1", {"noise": "pink"})
    cfg = resolve("dqn", "CartPole-v1", {"max_grad_norm": "none"})
    assert isinstance(cfg, OffPolicyConfig) and cfg.train.max_grad_norm is None


def test_unknown_algorithm_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'ppo'"):
        resolve("ppoo", "CartPole-v1")


def test_config_values_round_trip_through_a_file(tmp_path: Path) -> None:
    for algo in ALGOS:
        cfg = resolve(algo, ENV[algo], seed=2)
        path = tmp_path / f"{algo}.yaml"
        path.write_text(yaml.safe_dump(to_values(cfg)))
        assert load_config_file(path) == cfg
        assert load_config_file(path, {"lr": "0.5"}, seed=9) == dataclasses.replace(cfg, lr=0.5, seed=9)


def test_a_config_file_must_hold_every_setting(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("algo: ppo\nenv: CartPole-v1\nsteps: 10\n")
    with pytest.raises(ConfigError, match="missing settings"):
        load_config_file(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="'algo' entry"):
        load_config_file(path)


def test_the_command_starts_without_torch() -> None:
    code = "import sys, trajkit.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_presets_hand_out_copies() -> None:
    preset_values("ppo", "CartPole-v1")["hidden"].append(7)
    search_space("ppo")["lr"]["low"] = 0.5
    assert resolve("ppo", "CartPole-v1").hidden == [64, 64]  # type: ignore[attr-defined]
    assert search_space("ppo")["lr"]["low"] == 1.0e-4
