"""``trajkit record`` and ``trajkit train bc --expert``: a tiny PPO run recorded and cloned from the command line;
and the learning tier: DAgger with a hand-written expert reaches CartPole's threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import trajkit as tk
from trajkit import cli
from trajkit.run.imitation import DAggerSettings, run_dagger

TINY = ["--steps", "256", "--hp", "steps_per_iter=128", "--hp", "hidden=16", "--hp", "epoch=2",
        "--eval-episodes", "2", "--no-progress", "--quiet"]


def test_record_then_train_bc(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "ppo"
    assert cli.main(["train", "ppo", "--env", "CartPole-v1", "--logdir", str(run), *TINY]) == 0
    expert = tmp_path / "expert.npz"
    assert cli.main(["record", str(run), "--episodes", "3", "-o", str(expert)]) == 0
    assert "recorded 3 episodes" in capsys.readouterr().out
    traj = tk.load_traj(expert)
    assert traj.num_epi == 3 and bool((traj.epi["terminated"] ^ traj.epi["truncated"]).all())
    out = tmp_path / "bc"
    assert cli.main(["train", "bc", "--env", "CartPole-v1", "--expert", str(expert), "--logdir", str(out),
                     "--hp", "epoch=2", "--hp", "hidden=16,16", "--eval-episodes", "2"]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["settings"]["hidden"] == [16, 16] and len(result["returns"]) == 2
    assert (out / "policy.pt").exists()
    # trajkit eval rebuilds the cloned policy from policy.pt and eval.json, on the run's evaluation seed
    capsys.readouterr()
    assert cli.main(["eval", str(out), "--episodes", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["returns"] == pytest.approx(result["returns"])


def test_train_bc_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["train", "bc", "--env", "CartPole-v1"]) == 2
    assert "--expert" in capsys.readouterr().err
    assert cli.main(["train", "bc", "--env", "CartPole-v1", "--expert", str(tmp_path / "none.npz")]) == 2
    assert cli.main(["train", "bc", "--env", "CartPole-v1", "--expert", str(tmp_path / "x.npz"), "--hp",
                     "epochs=3"]) == 2
    assert "unknown bc setting" in capsys.readouterr().err


@pytest.mark.learning
def test_dagger_with_a_hand_written_expert_reaches_475() -> None:
    def expert(obs: torch.Tensor) -> torch.Tensor:
        return (obs[:, 2] + 0.5 * obs[:, 3] > 0).long()

    torch.set_num_threads(1)
    returns = run_dagger("CartPole-v1", expert, DAggerSettings.for_env("CartPole-v1"), seed=0)
    assert len(returns) == 5 and max(returns) >= 475


def test_imitation_settings_are_typed_from_strings_and_refuse_bad_values() -> None:
    from trajkit.run.fields import ConfigError
    from trajkit.run.imitation import BCSettings

    s = BCSettings.for_env("CartPole-v1", lr="1e-3", hidden=[16, 16], epoch="3")
    assert (s.lr, s.hidden, s.epoch) == (1e-3, (16, 16), 3)
    with pytest.raises(ConfigError, match="epoch=2.5 is not a valid int"):
        BCSettings.for_env("CartPole-v1", epoch=2.5)
    with pytest.raises(ConfigError, match="unknown bc setting"):
        BCSettings.for_env("CartPole-v1", epochs=3)
