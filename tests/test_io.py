"""Traj and episode files (trajkit.io): exact round trips, clear errors on bad files."""

from __future__ import annotations

import json
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# ---------------------------------------------------------------------- sizes checked before decompressing
def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _small_traj_file(tmp_path: Path) -> Path:
    traj = tk.Traj(
        {"obs": torch.zeros(8, 3), "acs": torch.zeros(8), "rews": torch.zeros(8)},
        {"terminated": torch.tensor([True]), "truncated": torch.tensor([False])},
        torch.tensor([0, 8]),
    )
    tio.save_traj(traj, tmp_path / "t.npz")
    return tmp_path / "t.npz"


def _peak_bytes_of(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_small_file_declaring_a_huge_array_is_refused_before_decompressing(tmp_path: Path) -> None:
    arrays = _arrays(_small_traj_file(tmp_path))
    arrays["step/obs"] = np.zeros((2_000_000, 3), np.float32)  # 24 MB of zeros, metadata says (8, 3)
    np.savez_compressed(tmp_path / "bomb.npz", **arrays)
    assert (tmp_path / "bomb.npz").stat().st_size < 200_000

    def load() -> None:
        with pytest.raises(tio.TrajFileError, match=r"'step/obs' is float32\[2000000, 3\], metadata says"):
            tio.load_traj(tmp_path / "bomb.npz")

    assert _peak_bytes_of(load) < 2_000_000


def test_max_bytes_bounds_what_a_consistent_file_may_allocate(tmp_path: Path) -> None:
    n = 500_000
    traj = tk.Traj(
        {"obs": torch.zeros(n, 3), "acs": torch.zeros(n), "rews": torch.zeros(n)},
        {"terminated": torch.tensor([True]), "truncated": torch.tensor([False])},
        torch.tensor([0, n]),
    )
    tio.save_traj(traj, tmp_path / "big.npz")  # 10 MB, metadata and headers all agree

    def load() -> None:
        with pytest.raises(tio.TrajFileError, match=r"more than max_bytes=1000000; pass a larger max_bytes"):
            tio.load_traj(tmp_path / "big.npz", max_bytes=1_000_000)

    assert _peak_bytes_of(load) < 1_000_000
    with pytest.raises(tio.TrajFileError, match="max_bytes"):
        tio.load_epis(tmp_path / "big.npz", max_bytes=1_000_000)
    assert tio.load_traj(tmp_path / "big.npz", max_bytes=None).num_step == n
    assert tio.load_traj(tmp_path / "big.npz").num_step == n  # the 1 GiB default
    assert tio.DEFAULT_MAX_BYTES == 1 << 30


def test_member_with_more_data_than_its_header_is_rejected(tmp_path: Path) -> None:
    src = _small_traj_file(tmp_path)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp_path / "bad.npz", "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, data + b"\0" * 64 if info.filename == "step/acs.npy" else data)
    with pytest.raises(tio.TrajFileError, match="'step/acs' declares"):
        tio.load_traj(tmp_path / "bad.npz")


# ---------------------------------------------------------------------- malformed metadata
def _with_meta(src: Path, dst: Path, meta: object) -> Path:
    arrays = _arrays(src)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(dst, **arrays)
    return dst


def _valid_meta(src: Path) -> dict:
    return json.loads(str(_arrays(src)["__meta__"]))


def _set(meta: dict, path: tuple, value: object) -> dict:
    out = json.loads(json.dumps(meta))
    node = out
    for k in path[:-1]:
        node = node[k]
    if value is _DELETE and isinstance(node, dict):
        node.pop(path[-1], None)
    elif value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ((), [1, 2], "metadata must be a JSON object, got a list"),
        ((), "traj", "metadata must be a JSON object, got a str"),
        (("version",), True, "format version True"),
        (("kind",), ["traj"], "kind \\['traj'\\] is neither"),
        (("columns",), [], "'columns' must be an object"),
        (("columns", "step/obs", "shape"), _DELETE, "column 'step/obs' needs 'dtype' and 'shape'"),
        (("columns", "step/obs", "dtype"), _DELETE, "column 'step/obs' needs 'dtype' and 'shape'"),
        (("columns", "step/obs"), [8, 3], "column 'step/obs' needs 'dtype' and 'shape'"),
        (("columns", "step/obs", "shape"), "8x3", "column 'step/obs' has shape '8x3'"),
        (("columns", "step/obs", "shape"), [8.0, 3], "column 'step/obs' has shape \\[8.0, 3\\]"),
        (("columns", "step/obs", "shape"), [], "column 'step/obs' has shape \\[\\]"),
        (("columns", "step/obs", "shape"), [8, -3], "has shape \\[8, -3\\]"),
        (("columns", "step/obs", "dtype"), "object", "unknown dtype 'object'"),
        (("columns", "step/obs", "dtype"), 4, "unknown dtype 4"),
        (("columns", "other/x"), {"dtype": "float32", "shape": [8]}, "column key 'other/x'"),
        (("columns", "step/"), {"dtype": "float32", "shape": [8]}, "column key 'step/'"),
    ],
)
def test_malformed_metadata_is_a_traj_file_error(tmp_path: Path, path: tuple, value: object, match: str) -> None:
    src = _small_traj_file(tmp_path)
    meta = value if path == () else _set(_valid_meta(src), path, value)
    bad = _with_meta(src, tmp_path / "bad.npz", meta)
    with pytest.raises(tio.TrajFileError, match=match):
        tio.load_traj(bad)
    with pytest.raises(tio.TrajFileError, match=match):
        tio.load_epis(bad)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_META_PATHS = st.sampled_from(
    [(), ("format",), ("version",), ("kind",), ("columns",), ("columns", "step/obs"),
     ("columns", "step/obs", "shape"), ("columns", "step/obs", "dtype"), ("columns", "epi/terminated"),
     ("columns", "epi/terminated", "shape"), ("columns", "step/rews", "shape", 0), ("columns", "step/new")]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=_META_PATHS, value=_JSON | st.just(_DELETE))
def test_fuzzed_metadata_gives_a_traj_or_a_traj_file_error(path: tuple, value: object) -> None:
    with tempfile.TemporaryDirectory() as d:
        src = _small_traj_file(Path(d))
        meta = (None if value is _DELETE else value) if path == () else _set(_valid_meta(src), path, value)
        bad = _with_meta(src, Path(d) / "bad.npz", meta)
        for load in (tio.load_traj, tio.load_epis):
            try:
                load(bad)
            except tio.TrajFileError:
                pass


def test_episode_file_with_a_nan_observation_is_a_traj_file_error(tmp_path: Path) -> None:
    epis = _epis()
    epis[1]["obs"][0, 0] = np.nan
    tio.save_epis(epis, tmp_path / "e.npz")
    with pytest.raises(tio.TrajFileError, match="episode 1 has a non-finite observation nan at step 0"):
        tio.load_traj(tmp_path / "e.npz")
    assert np.isnan(tio.load_epis(tmp_path / "e.npz")[1]["obs"][0, 0])  # the raw episodes still load


def test_traj_file_with_an_empty_episode_is_a_traj_file_error(tmp_path: Path) -> None:
    src = _small_traj_file(tmp_path)
    arrays = _arrays(src)
    meta = _valid_meta(src)
    arrays["bounds"] = np.array([0, 0, 8])
    for k in ("epi/terminated", "epi/truncated"):
        arrays[k] = np.array([True, False]) if k == "epi/terminated" else np.array([False, True])
        meta["columns"][k]["shape"] = [2]
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(tio.TrajFileError, match="episode 0 has no steps"):
        tio.load_traj(tmp_path / "bad.npz")
