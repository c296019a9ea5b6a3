"""Exact resume: a PPO run stopped at a checkpoint and resumed ends with bit-identical parameters."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from trajkit.checkpoint import load_checkpoint
from trajkit.run import ConfigError, resolve
from trajkit.run.evaluate import load_policy
from trajkit.run.runner import train
from trajkit.run.session import RunOutcome

#: whole episodes (the CartPole preset's continuing episodes resume fresh: tests/test_run_continuing.py)
TINY = {"steps_per_iter": 200, "hidden": [16], "epoch": 2, "batch_size": 64, "eval_episodes": 2, "num_envs": 1,
        "continuing": False}


def _spec(logdir: Path, steps: int, num_parallel: int, resume: bool = False, **hp: object) -> RunOutcome:
    cfg = resolve("ppo", "CartPole-v1", {**TINY, **hp}, steps=steps, seed=3, num_parallel=num_parallel,
                  checkpoint_every=1)
    return train(cfg, logdir, resume=resume, progress=False, console=False)


def _state(ckpt: Path) -> dict[str, dict]:
    """Every tensor of the models and optimizers in a run's final checkpoint."""
    content = torch.load(ckpt, weights_only=True)
    import io

    entries = torch.load(io.BytesIO(content["payload"]), weights_only=True)["entries"]
    return {k: e["state"] for k, e in entries.items() if e["kind"] in ("module", "optimizer", "generator")}


def _assert_identical(a: object, b: object, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[call-overload]
            _assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _rows(logdir: Path) -> list[dict[str, str]]:
    with open(logdir / "progress.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("sps", "time")} for r in csv.DictReader(f)]


@pytest.mark.parametrize("num_parallel", [1, pytest.param(2, marks=pytest.mark.slow)])  # workers: slow tier
def test_stopped_and_resumed_run_is_bit_identical(tmp_path: Path, num_parallel: int) -> None:
    full, split = tmp_path / "full", tmp_path / "split"
    _spec(full, 600, num_parallel)
    _spec(split, 200, num_parallel)  # "stopped" after one iteration
    # the interrupted process may have run on and logged more; the resumed run drops those rows
    torch.manual_seed(1234)  # a fresh process would not share the first run's RNG state
    out = _spec(split, 600, num_parallel, resume=True)
    assert out.iteration == 3 and out.env_steps == 600
    a, b = _state(full / "checkpoint.pt"), _state(split / "checkpoint.pt")
    assert set(a) == {"pol", "vf", "optim_pol", "optim_vf", "generator"}
    _assert_identical(a, b)
    assert _rows(full) == _rows(split)
    assert len(_rows(split)) == 3


def test_resume_with_different_settings_is_refused(tmp_path: Path) -> None:
    _spec(tmp_path, 200, 1)
    before = (tmp_path / "config.json").read_text()
    with pytest.raises(ConfigError, match="lr"):
        _spec(tmp_path, 400, 1, resume=True, lr=5e-4)
    assert (tmp_path / "config.json").read_text() == before  # the refused settings were not written
    with pytest.raises(ConfigError, match="--resume"):
        _spec(tmp_path, 400, 1)


def test_resume_drops_log_rows_written_after_the_checkpoint(tmp_path: Path) -> None:
    _spec(tmp_path, 400, 1)
    # the process logged iteration 3 and died before its checkpoint was written
    with open(tmp_path / "progress.csv", "a") as f:
        f.write("3,600,999,-1\n")
    ck = load_checkpoint(tmp_path / "checkpoint.pt", strict=False, restore_rng=False)
    assert ck.data["counters"]["iteration"] == 2
    _spec(tmp_path, 600, 1, resume=True)
    rows = _rows(tmp_path)
    assert [r["iteration"] for r in rows] == ["1", "2", "3"]
    assert rows[2]["episodes"] != "999"


def test_load_policy_rebuilds_the_trained_policy(tmp_path: Path) -> None:
    _spec(tmp_path, 200, 1)
    pol, config = load_policy(tmp_path / "checkpoint.pt")
    assert config["algo"] == "ppo" and config["hidden"] == [16]
    saved = _state(tmp_path / "checkpoint.pt")["pol"]
    for k, v in pol.state_dict().items():
        assert torch.equal(v, saved[k])
