#!/usr/bin/env bash
# All speed benchmarks, one after another, outputs in bench_out/. Run on an idle machine:
# the wall-clock parallel figures (process x2 vs in-process) need the cores to be free.
#     bash benchmarks/run_all_speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench_out
uptime | tee bench_out/load_before.txt
python benchmarks/bench_sampler.py --reps 5 --csv bench_out/sampler.csv 2>&1 | tee bench_out/sampler.txt
python benchmarks/bench_threads.py 2>&1 | tee bench_out/threads.txt
python benchmarks/bench_estimators.py --sb3 2>&1 | tee bench_out/estimators.txt
python benchmarks/bench_sac_throughput.py --steps 500 --repeats 5 2>&1 | tee bench_out/sac_throughput.txt
uptime | tee bench_out/load_after.txt
