"""Checkpoints (trajkit.checkpoint): round trip, validation before loading, atomic writes under SIGKILL."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_data, save_checkpoint


def _models(hidden: int = 8, seed: int = 0) -> tuple[tk.CategoricalPol, torch.optim.Adam]:
    torch.manual_seed(seed)
    env = tk.GymEnv("CartPole-v1")
    pol = tk.CategoricalPol(
        env.observation_space,
        env.action_space,
        tk.nets.mlp(4, 2, (hidden,)),
        obs_normalizer=tk.ObsNormalizer((4,)),
    )
    optim = torch.optim.Adam(pol.parameters(), 1e-3)
    loss = pol(torch.randn(5, 4))["logits"].sum()
    loss.backward()
    optim.step()
    pol.obs_normalizer.update(torch.randn(10, 4))
    return pol, optim


def _params(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_round_trip_restores_everything(tmp_path: Path) -> None:
    pol, optim = _models(seed=0)
    gen = torch.Generator().manual_seed(7)
    torch.rand(1, generator=gen)
    counters = {"iteration": 3, "arr": np.arange(4, dtype=np.uint16), "x": np.float32(1.5), "t": (1, "a")}
    torch.manual_seed(123)
    save_checkpoint(tmp_path / "c.pt", {"pol": pol, "optim": optim, "gen": gen, "counters": counters}, rng=True)
    expected_draw = torch.rand(3)
    expected_gen = torch.rand(2, generator=gen)

    pol2, optim2 = _models(seed=1)
    gen2 = torch.Generator().manual_seed(0)
    torch.manual_seed(999)
    ck = load_checkpoint(tmp_path / "c.pt", {"pol": pol2, "optim": optim2, "gen": gen2}, restore_rng=True)
    for k, v in pol.state_dict().items():
        assert torch.equal(pol2.state_dict()[k], v), k
    assert torch.equal(pol2.obs_normalizer.mean, pol.obs_normalizer.mean)
    s1, s2 = optim.state_dict(), optim2.state_dict()
    for pid in s1["state"]:
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(s1["state"][pid][k], s2["state"][pid][k])
    assert torch.equal(torch.rand(3), expected_draw), "global torch RNG restored"
    assert torch.equal(torch.rand(2, generator=gen2), expected_gen)
    data = ck.data["counters"]
    assert data["iteration"] == 3 and data["t"] == (1, "a")
    assert data["arr"].dtype == np.uint16 and data["arr"].tolist() == [0, 1, 2, 3]
    assert data["x"] == np.float32(1.5) and isinstance(data["x"], np.float32)
    assert ck.names == {"pol": "module", "optim": "optimizer", "gen": "generator", "counters": "data"}


def test_numpy_and_python_rng_restored_when_asked(tmp_path: Path) -> None:
    np.random.seed(5)
    random.seed(5)
    save_checkpoint(tmp_path / "c.pt", {}, rng=True)
    a, b = np.random.rand(3), random.random()
    np.random.seed(6)
    random.seed(6)
    load_checkpoint(tmp_path / "c.pt", restore_rng=True)
    assert np.array_equal(np.random.rand(3), a) and random.random() == b


def _global_draws() -> tuple:
    return torch.rand(2).tolist(), np.random.rand(2).tolist(), random.random()


def test_global_rngs_are_left_alone_by_default(tmp_path: Path) -> None:
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    save_checkpoint(tmp_path / "c.pt", {"n": 1})
    assert torch.load(tmp_path / "c.pt", weights_only=True)["payload"]  # readable
    content = torch.load(io.BytesIO(torch.load(tmp_path / "c.pt", weights_only=True)["payload"]), weights_only=True)
    assert content["rng"] is None, "global RNG states are saved only with rng=True"
    save_checkpoint(tmp_path / "with_rng.pt", {"n": 1}, rng=True)
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    expected = _global_draws()
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    load_checkpoint(tmp_path / "with_rng.pt")  # restore_rng defaults to False
    assert _global_draws() == expected


def test_sampler_state_round_trip(tmp_path: Path) -> None:
    pol, _ = _models()
    with tk.EpiSampler("CartPole-v1", pol, seed=3) as s:
        s.sample(pol, max_steps=50)
        save_checkpoint(tmp_path / "c.pt", {"sampler": s})
        ref = s.sample(pol, max_steps=80)
    with tk.EpiSampler("CartPole-v1", pol, seed=99) as s2:
        load_checkpoint(tmp_path / "c.pt", {"sampler": s2})
        got = s2.sample(pol, max_steps=80)
    assert len(got) == len(ref)
    for a, b in zip(ref, got, strict=True):
        assert np.array_equal(a["obs"], b["obs"]) and np.array_equal(a["acs"], b["acs"])


@pytest.mark.parametrize("case", ["shape", "missing", "kind", "optim_groups"])
def test_incompatible_checkpoint_raises_and_loads_nothing(tmp_path: Path, case: str) -> None:
    pol, optim = _models(hidden=8)
    save_checkpoint(tmp_path / "c.pt", {"pol": pol, "optim": optim})
    other, other_optim = _models(hidden=8, seed=1)
    targets: dict = {"pol": other, "optim": other_optim}
    if case == "shape":
        targets["pol"], targets["optim"] = _models(hidden=16, seed=1)
    elif case == "missing":
        targets["vf"] = torch.nn.Linear(2, 2)
    elif case == "kind":
        targets["optim"] = torch.Generator()
    elif case == "optim_groups":
        targets["optim"] = torch.optim.Adam(
            [{"params": [other.net[0].weight]}, {"params": [other.net[0].bias]}]
        )
    before = {k: _params(v) for k, v in targets.items() if isinstance(v, torch.nn.Module)}
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "c.pt", targets)
    for k, params in before.items():
        for name, v in targets[k].state_dict().items():
            assert torch.equal(v, params[name]), f"{k}.{name} was modified by a failed load"


def test_strict_requires_a_target_for_every_stateful_entry(tmp_path: Path) -> None:
    pol, optim = _models()
    save_checkpoint(tmp_path / "c.pt", {"pol": pol, "optim": optim})
    other, _ = _models(seed=1)
    with pytest.raises(CheckpointError, match="optim"):
        load_checkpoint(tmp_path / "c.pt", {"pol": other})
    load_checkpoint(tmp_path / "c.pt", {"pol": other}, strict=False, restore_rng=False)
    assert torch.equal(other.net[0].weight, pol.net[0].weight)


def test_sampler_num_parallel_mismatch_detected_before_loading(tmp_path: Path) -> None:
    pol, _ = _models()
    with tk.EpiSampler("CartPole-v1", pol, seed=3) as s:
        save_checkpoint(tmp_path / "c.pt", {"pol": pol, "sampler": s})
    other, _ = _models(seed=1)
    before = _params(other)
    with tk.EpiSampler("CartPole-v1", other, seed=3) as s1:
        s1.num_parallel = 2  # as if built with two workers
        with pytest.raises(CheckpointError, match="num_parallel"):
            load_checkpoint(tmp_path / "c.pt", {"pol": other, "sampler": s1})
        s1.num_parallel = 1
    for k, v in other.state_dict().items():
        assert torch.equal(v, before[k])


def test_optimizer_class_is_checked_before_loading(tmp_path: Path) -> None:
    pol, optim = _models()
    save_checkpoint(tmp_path / "c.pt", {"pol": pol, "optim": optim})
    other, _ = _models(seed=1)
    before = _params(other)
    sgd = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(CheckpointError, match=r"'optim'.* Adam optimizer, the target is a SGD"):
        load_checkpoint(tmp_path / "c.pt", {"pol": other, "optim": sgd})
    assert sgd.state_dict()["state"] == {} and sgd.param_groups[0]["lr"] == 0.1
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())


class _CheckedState:
    """A stateful object with ``check_state_dict`` (the CheckableState protocol), holding NumPy state."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.rng = np.arange(num_envs, dtype=np.uint32)
        self.checked: list = []

    def state_dict(self) -> dict:
        return {"num_envs": self.num_envs, "rng": self.rng}

    def check_state_dict(self, state: dict) -> None:
        self.checked.append(state)
        if not isinstance(state["rng"], np.ndarray):
            raise TypeError(f"rng must be an array, got {type(state['rng']).__name__}")
        if state["num_envs"] != self.num_envs:
            raise ValueError(f"state is for num_envs={state['num_envs']}, this object has {self.num_envs}")

    def load_state_dict(self, state: dict) -> None:
        self.check_state_dict(state)
        self.rng = state["rng"].copy()


def test_check_state_dict_of_any_stateful_object_runs_before_anything_loads(tmp_path: Path) -> None:
    pol, _ = _models()
    gen = torch.Generator().manual_seed(1)
    src = _CheckedState(2)
    src.rng += 7
    save_checkpoint(tmp_path / "c.pt", {"pol": pol, "gen": gen, "envs": src})

    other, _ = _models(seed=1)
    gen2 = torch.Generator().manual_seed(2)
    before_params, before_gen = _params(other), gen2.get_state()
    wrong = _CheckedState(3)
    with pytest.raises(CheckpointError, match=r"'envs': state is for num_envs=2, this object has 3"):
        load_checkpoint(tmp_path / "c.pt", {"gen": gen2, "pol": other, "envs": wrong})
    assert torch.equal(gen2.get_state(), before_gen), "generator overwritten by a failed load"
    assert all(torch.equal(v, before_params[k]) for k, v in other.state_dict().items())

    right = _CheckedState(2)
    load_checkpoint(tmp_path / "c.pt", {"gen": gen2, "pol": other, "envs": right})
    assert isinstance(right.checked[0]["rng"], np.ndarray), "check_state_dict sees the state as saved"
    assert right.rng.tolist() == [7, 8] and torch.equal(gen2.get_state(), gen.get_state())


def test_sampler_num_envs_per_worker_mismatch_changes_nothing(tmp_path: Path) -> None:
    pol, _ = _models()
    gen = torch.Generator().manual_seed(1)
    with tk.EpiSampler("CartPole-v1", pol, seed=3) as s:
        save_checkpoint(tmp_path / "c.pt", {"gen": gen, "sampler": s})
    gen2 = torch.Generator().manual_seed(2)
    before = gen2.get_state()
    with tk.EpiSampler("CartPole-v1", pol, seed=3, num_envs_per_worker=2) as s2:
        with pytest.raises(CheckpointError, match="num_envs_per_worker"):
            load_checkpoint(tmp_path / "c.pt", {"gen": gen2, "sampler": s2})
    assert torch.equal(gen2.get_state(), before), "generator overwritten by a failed load"


def test_corrupt_truncated_and_foreign_files(tmp_path: Path) -> None:
    pol, optim = _models()
    save_checkpoint(tmp_path / "c.pt", {"pol": pol, "optim": optim, "n": 1})
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    (tmp_path / "flip.pt").write_bytes(bytes(flipped))
    torch.save({"pol": pol.state_dict()}, tmp_path / "plain.pt")
    for name, pattern in (
        ("trunc.pt", "unreadable or truncated"),
        ("flip.pt", "corrupted|unreadable"),
        ("plain.pt", "not a trajkit checkpoint"),
    ):
        with pytest.raises(CheckpointError, match=pattern):
            load_checkpoint(tmp_path / name, {"pol": pol}, strict=False)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_wrong_format_version(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pt", {"n": 1})
    outer = torch.load(tmp_path / "c.pt", weights_only=True)
    outer["version"] = 99
    torch.save(outer, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "v99.pt")


class _Opaque:
    """An object with no state_dict: only storable by pickle."""

    def __init__(self, x: int) -> None:
        self.x = x


def test_pickled_objects_need_explicit_opt_in(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="allow_pickle"):
        save_checkpoint(tmp_path / "c.pt", {"obj": _Opaque(3)})
    save_checkpoint(tmp_path / "c.pt", {"obj": _Opaque(3)}, allow_pickle=True)
    with pytest.raises(CheckpointError, match="allow_pickle"):
        load_checkpoint(tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt", allow_pickle=True).data["obj"].x == 3


class _Buffer:
    """A replay-buffer-like object with state_dict/load_state_dict holding NumPy arrays."""

    def __init__(self) -> None:
        self.obs = np.zeros((0, 2), np.float32)
        self.ptr = 0

    def state_dict(self) -> dict:
        return {"obs": self.obs, "ptr": self.ptr}

    def load_state_dict(self, state: dict) -> None:
        self.obs, self.ptr = state["obs"], state["ptr"]


def test_stateful_objects_with_numpy_state(tmp_path: Path) -> None:
    buf = _Buffer()
    buf.obs, buf.ptr = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32), 5
    save_checkpoint(tmp_path / "c.pt", {"buffer": buf})
    other = _Buffer()
    load_checkpoint(tmp_path / "c.pt", {"buffer": other})
    assert other.ptr == 5 and other.obs.dtype == np.float32 and np.array_equal(other.obs, buf.obs)
    assert read_checkpoint_data(tmp_path / "c.pt") == {}


def test_empty_arrays_and_empty_bytes_round_trip(tmp_path: Path) -> None:
    empty = _Buffer()  # obs has shape (0, 2): tobytes() is b""
    save_checkpoint(tmp_path / "c.pt", {"buffer": empty, "counters": {"blob": b"", "none": np.zeros(0, np.int8)}})
    other = _Buffer()
    other.obs = np.ones((3, 2), np.float32)
    ck = load_checkpoint(tmp_path / "c.pt", {"buffer": other})
    assert other.obs.shape == (0, 2) and other.obs.dtype == np.float32
    assert ck.data["counters"]["blob"] == b"" and ck.data["counters"]["none"].dtype == np.int8


class _FailingLoad(_Buffer):
    """Passes the key check, then fails in load_state_dict (after the checks)."""

    def load_state_dict(self, state: dict) -> None:
        raise RuntimeError("disk on fire")


def test_a_load_failing_after_the_checks_restores_what_was_loaded(tmp_path: Path) -> None:
    pol, optim = _models()
    gen = torch.Generator().manual_seed(1)
    good = _Buffer()
    good.obs, good.ptr = np.ones((2, 2), np.float32), 2
    save_checkpoint(tmp_path / "c.pt", {"pol": pol, "optim": optim, "gen": gen, "a": good, "b": good})
    other, other_optim = _models(seed=1)
    gen2 = torch.Generator().manual_seed(2)
    before_params, before_gen = _params(other), gen2.get_state()
    a = _Buffer()
    targets = {"gen": gen2, "pol": other, "optim": other_optim, "a": a, "b": _FailingLoad()}
    with pytest.raises(CheckpointError, match=r"loading 'b' failed.*\['a'\] loaded before it restored.*disk on fire"):
        load_checkpoint(tmp_path / "c.pt", targets)
    assert a.ptr == 0 and a.obs.shape == (0, 2)
    assert torch.equal(gen2.get_state(), before_gen)
    assert all(torch.equal(v, before_params[k]) for k, v in other.state_dict().items())


def test_checkpoint_knows_no_sampler_class() -> None:
    import ast

    import trajkit._checkpoint_checks
    import trajkit.checkpoint

    for mod in (trajkit.checkpoint, trajkit._checkpoint_checks):
        tree = ast.parse(Path(mod.__file__).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m.startswith("trajkit.samplers") for m in imported), (mod.__name__, imported)
    assert isinstance(_CheckedState(1), trajkit.checkpoint.CheckableState)
    assert not isinstance(_Buffer(), trajkit.checkpoint.CheckableState)


_WRITER = textwrap.dedent(
    """
    import sys, torch
    from trajkit.checkpoint import save_checkpoint
    path = sys.argv[1]
    save_checkpoint(path, {"w": torch.zeros(10), "version": 0})
    print("ready", flush=True)
    i = 1
    while True:
        save_checkpoint(path, {"w": torch.full((3_000_000,), float(i)), "version": i})
        i += 1
    """
)


def _kill_during_write(script: Path, path: Path, delay: float) -> bool:
    """Start the writer, SIGKILL it while a temporary file is being written; True if that happened."""
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tmps = [p for p in path.parent.glob(f".{path.name}.*.tmp") if p.stat().st_size > 0]
            if tmps:
                time.sleep(delay)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return any(p.exists() for p in tmps)
            time.sleep(0.001)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow  # seconds on a small machine (slow tier)
def test_sigkill_during_write_leaves_previous_checkpoint_loadable(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    hits = 0
    for attempt, delay in enumerate((0.0, 0.01, 0.0, 0.005)):
        path = tmp_path / f"run{attempt}" / "ckpt.pt"
        path.parent.mkdir()
        if _kill_during_write(script, path, delay):
            hits += 1
            ck = load_checkpoint(path)
            w = torch.load(path, weights_only=True)  # the outer archive is intact too
            assert w["format"] == "trajkit.checkpoint"
            assert ck.data["version"] >= 0
            assert list(path.parent.glob(".ckpt.pt.*.tmp")), "the killed writer left its temporary file"
            save_checkpoint(path.parent / "other.pt", {"n": 1})  # a save of another target leaves it
            assert list(path.parent.glob(".ckpt.pt.*.tmp"))
            save_checkpoint(path, {"version": -1})  # the next save of this target removes it
            assert not list(path.parent.glob(".*.tmp")), "stale temporary file not cleaned by the next save"
            assert load_checkpoint(path).data["version"] == -1
        if hits >= 2:
            break
    assert hits >= 1, "never managed to kill the writer in the middle of a write"


def test_next_save_removes_only_stale_temporary_files_of_its_target(tmp_path: Path) -> None:
    import trajkit._atomic as atomic

    host, dead = atomic._host_tag(), 2**31 - 2  # no such process
    names = {
        f".c.pt.{dead}@{host}-abcd1234.tmp": False,  # writer gone: removed
        ".c.pt.zyxw1234.tmp": False,  # older trajkit's name, untouched for 2 h: removed
        ".c.pt.fresh123.tmp": True,  # older name, fresh: its writer may be alive
        f".c.pt.{os.getppid()}@{host}-livewrit.tmp": True,  # writer alive
        f".c.pt.{dead}@{'0' * 8 if host != '0' * 8 else '1' * 8}-abcd1234.tmp": True,  # another host's
        f".d.pt.{dead}@{host}-abcd1234.tmp": True,  # another target
        f".c.pt.1.{dead}@{host}-abcd1234.tmp": True,  # another target, "c.pt.1"
        ".c.pt.1.zyxw1234.tmp": True,  # another target's old-style name
        "c.pt.bak": True,
    }
    for n in names:
        (tmp_path / n).write_bytes(b"x" * 10)
    old = time.time() - 2 * 3600
    for n in (".c.pt.zyxw1234.tmp", ".c.pt.1.zyxw1234.tmp"):
        os.utime(tmp_path / n, (old, old))
    save_checkpoint(tmp_path / "c.pt", {"n": 1})
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {n for n, keep in names.items() if keep} | {"c.pt"}
    assert read_checkpoint_data(tmp_path / "c.pt") == {"n": 1}


def test_no_partial_file_when_saving_fails(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pt", {"n": 1})
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c.pt", {"n": 2, "bad": object()})
    assert read_checkpoint_data(tmp_path / "c.pt") == {"n": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
