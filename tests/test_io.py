"""Traj and episode files (trajkit.io): exact round trips, clear errors on bad files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import io as tio

DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
    torch.complex64,
]


def _traj_with_all_dtypes() -> tk.Traj:
    g = torch.Generator().manual_seed(0)
    bounds = torch.tensor([0, 3, 7, 8])
    data = {f"c_{str(d).split('.')[1]}": (torch.randn(8, 2, generator=g) * 50).to(d) for d in DTYPES}
    data.update(
        obs=torch.randn(8, 3, generator=g), acs=torch.randint(0, 4, (8,), generator=g), rews=torch.randn(8)
    )
    epi = {
        "terminated": torch.tensor([True, False, False]),
        "truncated": torch.tensor([False, True, True]),
        "final_obs": torch.randn(3, 3, generator=g),
    }
    return tk.Traj(data, epi, bounds)


def test_traj_round_trip_is_exact_for_every_dtype(tmp_path: Path) -> None:
    traj = _traj_with_all_dtypes()
    tio.save_traj(traj, tmp_path / "t.npz")
    back = tio.load_traj(tmp_path / "t.npz")
    assert back.keys() == traj.keys()
    for k in traj.keys():
        assert back[k].dtype == traj[k].dtype, k
        assert torch.equal(back[k], traj[k]), k
    for k, v in traj.epi.items():
        assert torch.equal(back.epi_col(k), v) and back.epi_col(k).dtype == v.dtype
    assert torch.equal(back.bounds, traj.bounds)
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"], "no temporary file left behind"


def test_file_is_plain_npz_with_json_metadata(tmp_path: Path) -> None:
    tio.save_traj(_traj_with_all_dtypes(), tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"]))
        assert meta["format"] == "trajkit.traj" and meta["version"] == tio.FORMAT_VERSION
        assert meta["columns"]["step/c_bfloat16"]["dtype"] == "bfloat16"
        assert z["step/obs"].shape == (8, 3) and z["bounds"].tolist() == [0, 3, 7, 8]


def _epis() -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {
            "obs": rng.normal(size=(t, 3)),
            "acs": rng.integers(0, 3, t),
            "rews": rng.normal(size=t).astype(np.float32),
            "mask": rng.random(t) > 0.5,
            "u8": rng.integers(0, 255, (t, 2), dtype=np.uint8),
            "terminated": term,
            "truncated": not term,
            "final_obs": rng.normal(size=3),
        }
        for t, term in ((4, True), (1, False), (6, False))
    ]


def test_episode_list_round_trip_keeps_numpy_dtypes(tmp_path: Path) -> None:
    epis = _epis()
    tio.save_epis(epis, tmp_path / "e.npz")
    back = tio.load_epis(tmp_path / "e.npz")
    assert len(back) == len(epis)
    for a, b in zip(epis, back, strict=True):
        assert set(a) == set(b)
        for k in a:
            if k in ("terminated", "truncated"):
                assert b[k] is a[k]
            else:
                assert b[k].dtype == np.asarray(a[k]).dtype and np.array_equal(b[k], a[k]), k


def test_episode_file_loads_as_traj(tmp_path: Path) -> None:
    epis = _epis()
    tio.save_epis(epis, tmp_path / "e.npz")
    traj = tio.load_traj(tmp_path / "e.npz")
    ref = tk.Traj.from_epis(epis)
    for k in ref.keys():
        assert torch.equal(traj[k], ref[k])


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file_raises_clear_error(tmp_path: Path, cut: float) -> None:
    tio.save_traj(_traj_with_all_dtypes(), tmp_path / "t.npz")
    data = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "bad.npz").write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(tio.TrajFileError, match="truncated or corrupted"):
        tio.load_traj(tmp_path / "bad.npz")


def test_flipped_byte_in_column_data_is_detected(tmp_path: Path) -> None:
    traj = tk.Traj(
        {"obs": torch.zeros(1000, 4), "acs": torch.zeros(1000), "rews": torch.zeros(1000)},
        {"terminated": torch.tensor([True]), "truncated": torch.tensor([False])},
        torch.tensor([0, 1000]),
    )
    tio.save_traj(traj, tmp_path / "t.npz")
    data = bytearray((tmp_path / "t.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "t.npz") as z:
        info = z.getinfo("step/obs.npy")
    data[info.header_offset + 200 + 1000] ^= 0xFF  # inside the obs array's data
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    with pytest.raises(tio.TrajFileError):
        tio.load_traj(tmp_path / "bad.npz")


def test_wrong_version_and_foreign_files_are_rejected(tmp_path: Path) -> None:
    tio.save_traj(_traj_with_all_dtypes(), tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__meta__"]))
    meta["version"] = 99
    np.savez(tmp_path / "v99.npz", **{**arrays, "__meta__": np.array(json.dumps(meta))})
    with pytest.raises(tio.TrajFileError, match="version 99"):
        tio.load_traj(tmp_path / "v99.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(tio.TrajFileError, match="not a trajkit Traj file"):
        tio.load_traj(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(tio.TrajFileError):
        tio.load_traj(tmp_path / "text.npz")


def test_shape_mismatch_with_metadata_is_rejected(tmp_path: Path) -> None:
    tio.save_traj(_traj_with_all_dtypes(), tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["step/obs"] = arrays["step/obs"][:5]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(tio.TrajFileError, match="step/obs"):
        tio.load_traj(tmp_path / "bad.npz")


def test_object_columns_cannot_be_saved(tmp_path: Path) -> None:
    epis = _epis()
    epis[0]["note"] = np.array(["a"] * 4, dtype=object)
    for e in epis[1:]:
        e["note"] = np.array(["b"] * len(e["rews"]), dtype=object)
    with pytest.raises(TypeError, match="numeric"):
        tio.save_epis(epis, tmp_path / "e.npz")
    assert not (tmp_path / "e.npz").exists()
