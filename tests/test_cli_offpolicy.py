"""The trajkit command with the off-policy recipes: train, eval and exact resume, on tiny runs."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
import torch
from test_resume import _assert_identical, _rows

from trajkit import cli
from trajkit.pols import ArgmaxQfPol, DeterministicPol, SquashedGaussianPol
from trajkit.run import resolve
from trajkit.run.evaluate import load_policy
from trajkit.run.runner import train
from trajkit.run.session import RunOutcome

#: small nets, a 400-step buffer (so 600 steps wrap the ring), training from step 200
COMMON = {"learning_starts": 200, "hidden": [32], "batch_size": 32, "buffer_size": 400, "eval_episodes": 2}
TINY: dict[str, tuple[str, dict[str, object]]] = {
    "sac": ("Pendulum-v1", {"steps_per_iter": 100}),
    "td3": ("Pendulum-v1", {"steps_per_iter": 100}),
    "ddpg": ("Pendulum-v1", {"steps_per_iter": 100, "prioritized": True}),
    "dqn": ("CartPole-v1", {"train_freq": 64, "exploration_steps": 300, "lr_decay_steps": 700}),
    "qtopt": ("Pendulum-v1", {"steps_per_iter": 100, "cem_samples": 16, "cem_elite": 4}),
}
EVAL_POLICY = {
    "sac": SquashedGaussianPol,
    "td3": DeterministicPol,
    "ddpg": DeterministicPol,
    "dqn": ArgmaxQfPol,
    "qtopt": ArgmaxQfPol,
}


def _hp_args(hp: dict[str, object]) -> list[str]:
    out = []
    for k, v in hp.items():
        text = ",".join(map(str, v)) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v)
        out += ["--hp", f"{k}={text}"]
    return out


def _entries(ckpt: Path) -> dict[str, object]:
    """Every module, optimizer, generator and stateful (buffer, sampler) entry of a checkpoint."""
    outer = torch.load(ckpt, weights_only=True)
    entries = torch.load(io.BytesIO(outer["payload"]), weights_only=True)["entries"]
    return {k: e["state"] for k, e in entries.items() if e["kind"] in ("module", "optimizer", "generator", "stateful")}


#: the default tier trains one algorithm through the command; the others run in the slow tier
FAST = ("dqn",)


@pytest.mark.parametrize("algo", [a if a in FAST else pytest.param(a, marks=pytest.mark.slow) for a in sorted(TINY)])
def test_train_and_eval_through_the_command(algo: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    env, hp = TINY[algo]
    logdir = tmp_path / algo
    argv = ["train", algo, "--env", env, "--steps", "600", "--logdir", str(logdir), "--checkpoint-every", "2"]
    assert cli.main([*argv, "--no-progress", "--quiet", *_hp_args({**COMMON, **hp})]) == 0
    assert {"config.json", "progress.csv", "checkpoint.pt"} <= {p.name for p in logdir.iterdir()}
    with open(logdir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["env_steps"]) >= 600 and len(rows) >= 6
    losses = [float(r["qf_loss"]) for r in rows if r.get("qf_loss")]
    assert losses and all(math.isfinite(x) for x in losses)  # training ran after warm-up
    assert json.loads((logdir / "config.json").read_text())["buffer_size"] == 400

    ckpt = logdir / "checkpoint.pt"
    saved = _entries(ckpt)
    assert saved["buffer"]["size"] == 400  # type: ignore[index]  # the ring wrapped and was saved whole
    pol, config = load_policy(ckpt)
    assert type(pol) is EVAL_POLICY[algo] and config["algo"] == algo
    for k, v in pol.state_dict().items():
        assert torch.equal(v, saved["pol"][k])  # type: ignore[index]

    capsys.readouterr()
    assert cli.main(["eval", str(ckpt), "--episodes", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["returns"]) == 2 and all(math.isfinite(r) for r in res["returns"])
    if env == "CartPole-v1":
        assert min(res["returns"]) >= 8  # CartPole never ends before 8 steps
    else:
        assert all(-2000 < r <= 0 for r in res["returns"])  # Pendulum returns over 200 steps


def _spec(algo: str, logdir: Path, steps: int, resume: bool = False) -> RunOutcome:
    env, hp = TINY[algo]
    overrides = {**COMMON, **hp, **({"prioritized": True} if algo == "dqn" else {})}
    cfg = resolve(algo, env, overrides, steps=steps, seed=7, checkpoint_every=1)
    return train(cfg, logdir, resume=resume, progress=False, console=False)


@pytest.mark.slow  # three runs with a checkpoint per iteration: ~6 s (sac ~8 s)
@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_stopped_and_resumed_off_policy_run_is_bit_identical(algo: str, tmp_path: Path) -> None:
    full, split = tmp_path / "full", tmp_path / "split"
    whole = _spec(algo, full, 600)
    first = _spec(algo, split, 300)  # "stopped" after the iteration that reached 300 steps
    assert 300 <= first.env_steps < whole.env_steps
    torch.manual_seed(1234)  # a fresh process would not share the first run's RNG state
    out = _spec(algo, split, 600, resume=True)
    assert (out.iteration, out.env_steps, out.episodes) == (whole.iteration, whole.env_steps, whole.episodes)
    a, b = _entries(full / "checkpoint.pt"), _entries(split / "checkpoint.pt")
    critic = {"qf1", "target_qf1"} if algo == "sac" else {"qf", "target_qf"}
    assert {"pol", *critic, "optim_qf", "buffer", "generator", "sampler", "episode_stats"} <= set(a)
    _assert_identical(a, b)
    assert _rows(full) == _rows(split)


def test_off_policy_settings_that_cannot_work_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["--steps", "200", "--no-progress", "--quiet"]
    assert cli.main(["train", "dqn", "--env", "Pendulum-v1", "--logdir", str(tmp_path / "a"), *base]) == 2
    assert "Discrete action space" in capsys.readouterr().err
    assert cli.main(["train", "sac", "--env", "CartPole-v1", "--logdir", str(tmp_path / "b"), *base]) == 2
    assert "Box" in capsys.readouterr().err
    argv = ["train", "td3", "--env", "Pendulum-v1", "--logdir", str(tmp_path / "d"), "--hp", "epis_per_iter=1"]
    assert cli.main([*argv, *base]) == 2
    assert "exactly one of steps_per_iter and epis_per_iter" in capsys.readouterr().err


@pytest.mark.slow  # worker processes or long training: seconds on a small machine (slow tier)
def test_epsilon_schedule_reaches_worker_processes() -> None:
    """Exploration state is part of the policy's state_dict, so --num-parallel > 1 works for DQN."""
    import gymnasium as gym

    import trajkit as tk

    env = tk.GymEnv("CartPole-v1")
    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.tensor([1.0, 0.0]))  # greedy action is always 0
    qf = tk.DiscreteQfunc(env.observation_space, gym.spaces.Discrete(2), net)
    pol = ArgmaxQfPol(env.observation_space, env.action_space, qf, epsilon=0.0)
    with tk.EpiSampler("CartPole-v1", pol, num_parallel=2, seed=0) as sampler:
        pol.epsilon = 1.0  # type: ignore[assignment]
        acs = torch.cat([torch.as_tensor(e["acs"]).flatten() for e in sampler.sample(pol, max_steps=400)])
        assert 0.3 < float(acs.float().mean()) < 0.7  # uniformly random in the workers
        pol.epsilon = 0.0  # type: ignore[assignment]
        acs = torch.cat([torch.as_tensor(e["acs"]).flatten() for e in sampler.sample(pol, max_steps=400)])
        assert int(acs.sum()) == 0  # greedy in the workers
