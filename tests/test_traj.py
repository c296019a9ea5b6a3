"""``Traj``: building, combining, per-episode access, devices and the stateless iterators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from epi_factories import episode_specs, make_epis, make_traj
from hypothesis import given, settings
from hypothesis import strategies as st

import trajkit as tk

SETTINGS = settings(max_examples=30, deadline=None)


def row_ids(traj: tk.Traj) -> tk.Traj:
    """The Traj with an ``ids`` column numbering its steps 0..N-1 (to track where rows go)."""
    return traj.with_columns(ids=torch.arange(traj.num_step))


# ---------------------------------------------------------------------- from_epis
def test_from_epis_concatenates_columns_and_records_bounds():
    epis = make_epis([3, 1, 4], [True, False, False], seed=0)
    traj = tk.Traj.from_epis(epis)
    assert traj.num_epi == 3 and traj.num_step == 8
    assert traj.bounds.tolist() == [0, 3, 4, 8]
    assert traj.epi_lens.tolist() == [3, 1, 4]
    for k in ("obs", "acs", "rews"):
        np.testing.assert_array_equal(traj[k].numpy(), np.concatenate([e[k] for e in epis]))
    assert traj["rews"].dtype == torch.float32
    assert traj.epi_col("terminated").tolist() == [True, False, False]
    assert traj.epi_col("truncated").tolist() == [False, True, True]
    np.testing.assert_array_equal(traj.epi_col("final_obs").numpy(), np.stack([e["final_obs"] for e in epis]))
    assert traj.epi_ids().tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    assert traj.first_idx().tolist() == [0, 3, 4]
    assert traj.last_idx().tolist() == [2, 3, 7]


def test_from_epis_float64_arrays_become_float32():
    epis = make_epis([2], [True])
    epis[0]["obs"] = epis[0]["obs"].astype(np.float64)
    assert tk.Traj.from_epis(epis)["obs"].dtype == torch.float32


# ---------------------------------------------------------------------- epi_view, select_epis
def test_epi_view_returns_each_episode_and_its_episode_columns():
    epis = make_epis([2, 5, 1], [False, True, False], seed=1)
    traj = tk.Traj.from_epis(epis)
    for e, epi in enumerate(epis):
        view = traj.epi_view(e)
        for k in ("obs", "acs", "rews"):
            np.testing.assert_array_equal(view[k].numpy(), epi[k])
        assert bool(view["terminated"]) == epi["terminated"]
        np.testing.assert_array_equal(view["final_obs"].numpy(), epi["final_obs"])
    np.testing.assert_array_equal(traj.epi_view(-1)["obs"].numpy(), epis[-1]["obs"])
    with pytest.raises(IndexError):
        traj.epi_view(3)


def test_select_epis_keeps_the_requested_episodes_in_order():
    epis = make_epis([2, 5, 1, 3], [False, True, False, True], seed=2)
    traj = tk.Traj.from_epis(epis)
    sub = traj.select_epis([3, 0, 2])
    assert sub.epi_lens.tolist() == [3, 2, 1]
    for i, e in enumerate([3, 0, 2]):
        for k in ("obs", "acs", "rews"):
            np.testing.assert_array_equal(sub.epi_view(i)[k].numpy(), epis[e][k])
        assert bool(sub.epi_col("terminated")[i]) == epis[e]["terminated"]


# ---------------------------------------------------------------------- concat / add_traj
def test_concat_and_add_traj_put_episodes_one_after_another():
    a_epis = make_epis([2, 3], [True, False], seed=3)
    b_epis = make_epis([1, 4, 2], [False, False, True], seed=4)
    a, b = tk.Traj.from_epis(a_epis), tk.Traj.from_epis(b_epis)
    both = tk.concat([a, b])
    assert both.num_epi == 5 and both.num_step == a.num_step + b.num_step
    for i, epi in enumerate(a_epis + b_epis):
        np.testing.assert_array_equal(both.epi_view(i)["obs"].numpy(), epi["obs"])
        np.testing.assert_array_equal(both.epi_view(i)["final_obs"].numpy(), epi["final_obs"])
    added = a.add_traj(b)
    for k in both.keys():
        assert torch.equal(added[k], both[k])
    assert torch.equal(added.bounds, both.bounds)
    assert a.num_epi == 2 and b.num_epi == 3  # inputs untouched


# ---------------------------------------------------------------------- to(device)
def test_to_moves_every_column_and_keeps_bounds_on_cpu():
    traj = make_traj([2, 3], [True, False])
    moved = traj.to("meta")
    assert all(moved[k].device.type == "meta" for k in moved.keys())
    assert all(v.device.type == "meta" for v in moved.epi.values())
    assert moved.num_step == traj.num_step and moved.bounds.device.type == "cpu"
    assert traj["obs"].device.type == "cpu"  # the original stays where it was
    same = traj.to("cpu")
    assert same["obs"] is traj["obs"]


# ---------------------------------------------------------------------- iterate
@SETTINGS
@given(specs=episode_specs, batch_size=st.integers(1, 12), epoch=st.integers(1, 3), seed=st.integers(0, 1000))
def test_iterate_covers_every_step_each_epoch_and_keeps_the_last_partial_batch(
    specs, batch_size, epoch, seed
):
    traj = row_ids(make_traj([t for t, _ in specs], [x for _, x in specs]))
    n = traj.num_step
    batches = list(traj.iterate(batch_size, epoch=epoch, generator=seed))
    per_epoch = -(-n // batch_size)
    assert len(batches) == per_epoch * epoch
    for e in range(epoch):
        chunk = batches[e * per_epoch : (e + 1) * per_epoch]
        sizes = [len(b["ids"]) for b in chunk]
        assert sizes == [batch_size] * (per_epoch - 1) + [n - batch_size * (per_epoch - 1)]
        ids = torch.cat([b["ids"] for b in chunk])
        assert sorted(ids.tolist()) == list(range(n))
        for b in chunk:  # rows stay aligned across columns
            assert torch.equal(b["obs"], traj["obs"][b["ids"]])


def test_iterate_is_deterministic_for_a_seed_and_stores_no_state():
    traj = row_ids(make_traj([5, 7, 3, 9], [True, False, False, True]))
    run = lambda gen: [b["ids"].tolist() for b in traj.iterate(4, epoch=2, generator=gen)]  # noqa: E731
    first = run(7)
    assert run(7) == first
    assert run(torch.Generator().manual_seed(7)) == run(torch.Generator().manual_seed(7))
    assert run(8) != first
    # two interleaved iterators do not disturb each other: no cursor lives on the Traj
    it1, it2 = traj.iterate(4, epoch=2, generator=7), traj.iterate(4, epoch=2, generator=7)
    interleaved = [(next(it1)["ids"].tolist(), next(it2)["ids"].tolist()) for _ in range(len(first))]
    assert [a for a, _ in interleaved] == first and [b for _, b in interleaved] == first
    assert not hasattr(traj, "__dict__")


def test_iterate_epochs_draw_new_permutations_and_shuffle_false_is_in_order():
    traj = row_ids(make_traj([20, 20], [True, False]))
    batches = [b["ids"] for b in traj.iterate(40, epoch=2, generator=0)]
    assert not torch.equal(batches[0], batches[1])
    in_order = torch.cat([b["ids"] for b in traj.iterate(6, shuffle=False)])
    assert in_order.tolist() == list(range(40))


def test_iterate_rejects_a_non_positive_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        list(make_traj([3], [True]).iterate(0))


# ---------------------------------------------------------------------- random / full batch
def test_random_batch_draws_aligned_rows_deterministically():
    traj = row_ids(make_traj([5, 6], [True, False]))
    batch = traj.random_batch(32, generator=3)
    assert len(batch["ids"]) == 32
    assert torch.equal(batch["obs"], traj["obs"][batch["ids"]])
    assert torch.equal(traj.random_batch(32, generator=3)["ids"], batch["ids"])
    assert not torch.equal(traj.random_batch(32, generator=4)["ids"], batch["ids"])


def test_full_batch_holds_every_step_column():
    traj = make_traj([2, 3], [True, False])
    full = traj.full_batch()
    assert set(full) == set(traj.keys())
    assert all(torch.equal(full[k], traj[k]) for k in full)


# ---------------------------------------------------------------------- iterate_epi
def test_iterate_epi_yields_every_episode():
    epis = make_epis([2, 4, 1], [False, True, False], seed=5)
    traj = tk.Traj.from_epis(epis)
    views = list(traj.iterate_epi())
    assert len(views) == 3
    for view, epi in zip(views, epis, strict=True):
        np.testing.assert_array_equal(view["obs"].numpy(), epi["obs"])
    shuffled = list(traj.iterate_epi(shuffle=True, generator=1))
    lengths = sorted(len(v["rews"]) for v in shuffled)
    assert lengths == [1, 2, 4]


# ---------------------------------------------------------------------- iterate_rnn
@SETTINGS
@given(specs=episode_specs, batch_size=st.integers(1, 4), seed=st.integers(0, 1000))
def test_iterate_rnn_pads_and_masks_whole_episodes(specs, batch_size, seed):
    epis = make_epis([t for t, _ in specs], [x for _, x in specs], seed=seed)
    traj = row_ids(tk.Traj.from_epis(epis))
    seen = []
    batches = list(traj.iterate_rnn(batch_size, epoch=1, generator=seed))
    assert len(batches) == -(-traj.num_epi // batch_size)
    for batch in batches:
        t_max, b = batch["mask"].shape
        assert b <= batch_size
        assert batch["obs"].shape == (t_max, b, epis[0]["obs"].shape[1])
        for j in range(b):
            length = int(batch["mask"][:, j].sum())
            first_id = int(batch["ids"][0, j])
            e = int(traj.epi_ids()[first_id])
            seen.append(e)
            assert length == len(epis[e]["rews"])
            assert batch["mask"][:length, j].eq(1).all() and batch["mask"][length:, j].eq(0).all()
            np.testing.assert_array_equal(batch["obs"][:length, j].numpy(), epis[e]["obs"])
            np.testing.assert_array_equal(batch["rews"][:length, j].numpy(), epis[e]["rews"])
            assert batch["obs"][length:, j].eq(0).all() and batch["rews"][length:, j].eq(0).all()
            assert bool(batch["terminated"][j]) == epis[e]["terminated"]
        assert t_max == max(int(batch["mask"][:, j].sum()) for j in range(b))
    assert sorted(seen) == list(range(traj.num_epi))


def test_select_epis_with_a_boolean_mask_keeps_the_masked_episodes():
    epis = make_epis([2, 5, 1, 3], [False, True, False, True], seed=6)
    traj = tk.Traj.from_epis(epis)
    sub = traj.select_epis(traj.epi_col("terminated"))
    assert sub.epi_lens.tolist() == [5, 3] and bool(sub.epi_col("terminated").all())
    np.testing.assert_array_equal(sub.epi_view(1)["obs"].numpy(), epis[3]["obs"])
    assert traj.select_epis([True, False, False, False]).epi_lens.tolist() == [2]
    with pytest.raises(ValueError, match="episode mask needs shape"):
        traj.select_epis(torch.tensor([True, False]))


# ---------------------------------------------------------------------- errors
def test_missing_column_error_carries_the_callers_hint():
    err = tk.MissingColumnError("zzz", ["obs", "rews"], hint="run my_estimator first")
    msg = str(err)
    assert "'zzz'" in msg and "run my_estimator first" in msg and "['obs', 'rews']" in msg
    assert isinstance(err, KeyError) and err.name == "zzz"
    plain = str(tk.MissingColumnError("zzz", ["obs"], where="episode"))
    assert plain == "Traj has no episode column 'zzz'. Available episode columns: ['obs']."


@pytest.mark.parametrize(
    ("where", "value", "match"),
    [
        ("obs", np.nan, r"episode 1 has a non-finite observation nan at step 2"),
        ("obs", -np.inf, r"episode 1 has a non-finite observation -inf at step 2"),
        ("final_obs", np.nan, r"episode 1 has a non-finite final_obs nan .*last step 3"),
    ],
)
def test_from_epis_refuses_non_finite_observations(where, value, match):
    epis = make_epis([3, 4], [True, False])
    if where == "obs":
        epis[1]["obs"][2, 1] = value
    else:
        epis[1]["final_obs"][0] = value
    with pytest.raises(ValueError, match=match):
        tk.Traj.from_epis(epis)


def test_from_epis_accepts_integer_observations_and_refuses_nan_in_float64_tensors():
    epis = make_epis([2], [True])
    epis[0]["obs"] = np.arange(6).reshape(2, 3)  # discrete observations are always finite
    epis[0]["final_obs"] = np.arange(3)
    assert tk.Traj.from_epis(epis)["obs"].dtype == torch.int64
    epis[0]["obs"] = torch.tensor([[0.0, 1.0], [float("nan"), 2.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="non-finite observation nan at step 1"):
        tk.Traj.from_epis(epis)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda t: t.random_batch(0), ValueError, "batch_size must be >= 1, got 0"),
        (lambda t: t.random_batch(-1), ValueError, "batch_size must be >= 1, got -1"),
        (lambda t: t.random_batch(2.0), TypeError, "batch_size must be an integer"),
        (lambda t: t.random_batch(True), TypeError, "batch_size must be an integer"),
        (lambda t: t.iterate(batch_size=16.5), TypeError, "batch_size must be an integer, got 16.5"),
        (lambda t: t.iterate(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
        (lambda t: t.iterate(batch_size=4, epoch=0), ValueError, "epoch must be >= 1, got 0"),
        (lambda t: t.iterate(batch_size=4, epoch=1.5), TypeError, "epoch must be an integer"),
        (lambda t: t.iterate_rnn(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
        (lambda t: t.iterate_rnn(batch_size=2, epoch=0), ValueError, "epoch must be >= 1, got 0"),
    ],
)
def test_iterators_refuse_bad_sizes_at_the_call(call, exc, match):
    traj = make_traj([3, 2], [True, False])
    with pytest.raises(exc, match=match):
        call(traj)  # no next(): the error comes before the first batch


def test_iterators_accept_numpy_integers():
    traj = make_traj([3, 2], [True, False])
    assert len(traj.random_batch(np.int64(3))["obs"]) == 3
    assert len(list(traj.iterate(np.int32(2), epoch=np.int64(1)))) == 3


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.random_batch(4),
        lambda t: t.iterate(4),
        lambda t: t.iterate_epi(),
        lambda t: t.iterate_rnn(2),
    ],
)
def test_an_empty_traj_is_refused_by_the_iterators(call):
    full = make_traj([3, 2], [True, False])
    empty = full.select_epis(torch.zeros(2, dtype=torch.bool))  # constructing one is allowed
    assert empty.num_epi == 0 and empty.num_step == 0 and empty.bounds.tolist() == [0]
    assert set(empty.full_batch()) == set(full.keys())
    with pytest.raises(ValueError, match=r"empty Traj \(Traj\(num_epi=0, num_step=0"):
        call(empty)
    with pytest.raises(ValueError, match="at least one episode, got an empty list"):
        tk.Traj.from_epis([])


def test_traj_module_knows_no_file_format_nor_estimator():
    import ast
    import pathlib

    import trajkit.traj

    src = pathlib.Path(trajkit.traj.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not {m for m in imported if m.startswith(("trajkit.io", "trajkit.ef"))}, imported
    assert "PRODUCERS" not in src
    assert not hasattr(tk.Traj, "save") and not hasattr(tk.Traj, "load")
