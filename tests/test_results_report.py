"""benchmarks/results.py and results_report.py: records, tables, docs blocks, images (made-up records)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
DOCS = BENCH.parent / "docs"
sys.path.insert(0, str(BENCH))

import results  # noqa: E402
import results_report as rr  # noqa: E402

ROW = rr.Row("ppo", "ppo", "CartPole-v1", 100_000, 475.0, "ppo", label="PPO")


def record(seed: int, mean: float, library: str = "trajkit", row: str = "ppo", budget: int = 100_000) -> dict:
    return {"row": row, "algo": row, "env": "CartPole-v1", "library": library, "seed": seed, "steps": budget + 96,
            "budget": budget, "eval_mean": mean, "eval_std": 0.0, "wall_s": 10.0 + seed, "cpu_s": 9.0 + seed,
            "trajkit": "0.2.0", "torch": "2.13.0", "gymnasium": "1.0.0", "sb3": "2.3.2" if library == "sb3" else "",
            "date": "2026-12-02", "logdir": f"runs/results/{row}/{library}_s{seed}"}


def test_records_round_trip_sorted_and_typed(tmp_path):
    recs = [record(2, 500.0), record(0, 480.5), record(1, 12.25, "sb3")]
    rr.write_records(tmp_path / "r.csv", recs)
    back = rr.read_records(tmp_path / "r.csv")
    assert [(r["library"], r["seed"]) for r in back] == [("sb3", 1), ("trajkit", 0), ("trajkit", 2)]
    assert back[1]["eval_mean"] == 480.5 and isinstance(back[1]["seed"], int) and isinstance(back[1]["steps"], int)
    assert rr.read_records(tmp_path / "missing.csv") == []
    assert not (tmp_path / "r.tmp").exists()


def test_replace_keeps_one_record_per_run_and_find_matches_budget():
    recs = rr.replace([record(0, 100.0), record(1, 200.0)], record(0, 300.0))
    assert sorted(r["eval_mean"] for r in recs) == [200.0, 300.0]
    assert rr.find(recs, "ppo", "trajkit", 0, 100_000)["eval_mean"] == 300.0
    assert rr.find(recs, "ppo", "trajkit", 0, 2_000) is None
    assert rr.find(recs, "ppo", "sb3", 0, 100_000) is None


def test_mean_std_is_over_seeds_with_population_std():
    assert rr.mean_std([]) == "—"
    assert rr.mean_std([412.4]) == "412.4"
    assert rr.mean_std([500.0, 500.0, 163.3]) == "387.8 ± 158.7"  # mean 387.77, pstdev 158.72


def test_row_table_puts_each_seed_in_its_column_and_medians_times():
    recs = [record(0, 500.0), record(2, 163.3), record(1, 450.0, "sb3"), record(0, 2.0, budget=2_000)]
    lines = rr.row_table(ROW, recs, [0, 1, 2])
    assert lines[0] == "| library | seed 0 | seed 1 | seed 2 | mean ± std | wall s (median) | CPU s (median) |"
    assert lines[2] == "| trajkit 0.2.0 | 500.0 | — | 163.3 | 331.6 ± 168.3 | 11 | 10 |"
    assert lines[3] == "| SB3 2.3.2 | — | 450.0 | — | 450.0 | 11 | 10 |"
    assert len(lines) == 4  # the 2k-step record belongs to another budget


def test_target_met_needs_every_seed():
    assert rr.target_met(ROW, []) is None
    assert rr.target_met(ROW, [record(0, 500.0), record(1, 475.0)]) is True
    assert rr.target_met(ROW, [record(0, 500.0), record(1, 474.9)]) is False
    assert rr.target_met(ROW, [record(0, 10.0, "sb3")]) is None  # SB3's runs do not count


def test_replace_block_keeps_the_page_around_it_and_refuses_pages_without_markers(tmp_path):
    text = f"# T\nbefore\n{rr.BEGIN}\nold\n{rr.END}\nafter\n"
    out = rr.replace_block(text, ["new 1", "new 2"], tmp_path)
    assert out == f"# T\nbefore\n{rr.BEGIN}\nnew 1\nnew 2\n{rr.END}\nafter\n"
    assert rr.replace_block(out, ["new 1", "new 2"], tmp_path) == out  # idempotent
    with pytest.raises(ValueError, match="no '<!-- results begin -->'"):
        rr.replace_block("# no block\n", [], tmp_path / "page.md")


def test_select_rows_by_name_or_algorithm():
    assert [r.name for r in results.select(["dqn"])] == ["dqn", "dqn_per"]
    assert [r.name for r in results.select(["sac_per", "ppo"])] == ["ppo", "sac_per"]
    assert len(results.select(None)) == len(results.ROWS)
    with pytest.raises(SystemExit, match="unknown rows"):
        results.select(["ppo", "sacc"])


def test_every_row_is_its_preset_and_has_a_page_with_a_results_block():
    for row in results.ROWS:
        cfg = results.config(row, seed=1, steps=None)
        assert (cfg.algo, cfg.env, cfg.seed, cfg.steps) == (row.algo, row.env, 1, row.steps)
        assert cfg.eval_every == row.hp.get("eval_every", row.steps // 10)  # a tenth unless the row says
        assert all(getattr(cfg, k) == v for k, v in row.hp.items())
        text = (DOCS / "algorithms" / f"{row.page}.md").read_text()
        assert rr.BEGIN in text and rr.END in text, row.page
        assert f"--algos {row.name}" in text or row.name in text


def _copy_docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    shutil.copytree(DOCS / "algorithms", docs / "algorithms")
    shutil.copy(DOCS / rr.SUMMARY_PAGE, docs / rr.SUMMARY_PAGE)
    return docs


def _fake_log(root: Path, rec: dict, algo: str) -> None:
    d = root / rec["logdir"]
    d.mkdir(parents=True)
    (d / "config.json").write_text(f'{{"algo": "{algo}", "env": "CartPole-v1", "seed": {rec["seed"]}}}')
    (d / "progress.csv").write_text("env_steps,return_mean,eval_return_mean\n"
                                    "10000,20,30\n50000,100,\n100000,400,500\n")


def test_report_only_regenerates_tables_summary_and_images_from_the_file(tmp_path):
    pytest.importorskip("matplotlib")
    docs, data = _copy_docs(tmp_path), tmp_path / "docs" / "results"
    recs = [record(0, 500.0), record(1, 490.0), record(2, 480.0), record(0, 499.0, "sb3")]
    for r in recs:
        _fake_log(tmp_path, r, "ppo" if r["library"] == "trajkit" else "sb3-ppo")
    rr.write_records(data / "results.csv", recs)
    rows = results.ROWS
    readme = tmp_path / "README.md"
    readme.write_text(f"# trajkit\n{rr.BEGIN}\n{rr.END}\nrest\n")
    rr.write_docs(rows, rr.read_records(data / "results.csv"), data, docs, tmp_path, only={"ppo"}, readme=readme)
    line = "| PPO | CartPole-v1 | 100,000 | 490.0 ± 8.2 | 480.0 | 0, 1, 2 | >= 475 | yes | 499.0 |\n"
    assert line in readme.read_text()
    assert "{doc}" not in readme.read_text() and readme.read_text().endswith("rest\n")
    page = (docs / "algorithms" / "ppo.md").read_text()
    assert "| trajkit 0.2.0 | 500.0 | 490.0 | 480.0 | 490.0 ± 8.2 |" in page
    assert "| SB3 2.3.2 | 499.0 | — | — | 499.0 |" in page
    assert "(reached on every seed)" in page and "](../results/ppo.png)" in page
    assert (data / "ppo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (docs / rr.SUMMARY_PAGE).read_text()
    assert "| PPO | CartPole-v1 | 100,000 | 490.0 ± 8.2 | 480.0 | 0, 1, 2 | >= 475 | yes | 499.0 |" in summary
    assert "| TRPO | CartPole-v1 | 100,000 | — |" in summary  # rows without runs say so
    assert "not run yet" in (docs / "algorithms" / "trpo.md").read_text()


def test_main_report_only_trains_nothing(tmp_path, monkeypatch):
    docs, data = _copy_docs(tmp_path), tmp_path / "data"
    monkeypatch.setattr(results, "run_one", lambda *a: pytest.fail("report-only must not train"))
    results.main(["--report-only", "--data", str(data), "--docs", str(docs), "--logroot", str(tmp_path)])
    assert "not run yet" in (docs / "algorithms" / "sac.md").read_text()
    assert not os.path.exists(data / "results.csv")


def test_add_record_keeps_what_another_benchmark_wrote_meanwhile(tmp_path):
    path = tmp_path / "results.csv"
    rr.add_record(path, record(0, 100.0))
    rr.write_records(path, [*rr.read_records(path), record(1, 200.0, row="trpo")])  # another process's write
    out = rr.add_record(path, record(0, 300.0))
    assert sorted((r["row"], r["eval_mean"]) for r in out) == [("ppo", 300.0), ("trpo", 200.0)]
    assert rr.read_records(path) == out


def test_main_records_runs_skips_recorded_ones_and_resumes_a_longer_budget(tmp_path, capsys):
    docs, data, logs = _copy_docs(tmp_path), tmp_path / "docs" / "results", tmp_path / "logs"
    argv = ["--algos", "ppo", "--seeds", "0", "--no-sb3", "--data", str(data), "--docs", str(docs),
            "--logroot", str(logs)]
    results.main([*argv, "--steps", "512"])
    (rec,) = rr.read_records(data / "results.csv")
    assert (rec["row"], rec["library"], rec["seed"], rec["budget"], rec["steps"]) == ("ppo", "trajkit", 0, 512, 512)
    assert rec["cpu_s"] > 0 and rec["torch"] and (data / "ppo.png").exists()
    results.main([*argv, "--steps", "512"])
    assert "(skipped)" in capsys.readouterr().out
    results.main([*argv, "--steps", "1024"])  # resumes the run's checkpoint: iterations 3 and 4 continue it
    recs = rr.read_records(data / "results.csv")
    assert [(r["budget"], r["steps"]) for r in recs] == [(512, 512), (1024, 1024)]
    from trajkit.logger import read_csv

    assert list(read_csv(logs / "ppo" / "trajkit_s0" / "progress.csv")["iteration"]) == [1, 2, 3, 4]
