"""Sim and real in one training run: PPO on episodes from a local simulator and a remote env.

    python examples/run_sim_and_real.py                       # starts a "real" Pendulum server itself
    TRAJKIT_ENV_TOKEN=... python examples/run_sim_and_real.py --host 10.0.0.7 --port 7001

The "real" env is whatever a :func:`trajkit.envs.serve` process exposes: a robot's
controller in practice. Without ``--port`` this script plays the robot itself by
starting ``python -m trajkit.envs REAL_ENV`` in another process (by default Pendulum-v1
with ``g=9.81``, while the simulator uses the default ``g=10``), with a fresh random token.
With ``--port`` it connects to a running server; the token comes from the
``TRAJKIT_ENV_TOKEN`` environment variable (never from the command line).

Each iteration: the simulator sampler (any number of workers) and the real sampler (in
process: one robot, one episode at a time) collect their steps; each batch becomes its
own Traj through the estimator chain; ``tk.concat`` joins them and PPO trains on the
union. Every iteration is logged, with each source's mean return (``return_sim``,
``return_real``), to ``--logdir`` (``progress.csv``, TensorBoard events in ``tb/``). A
dropped connection ends the real episode as truncated and the next episode reconnects;
an unreachable server stops the run with a clear error.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import subprocess
import sys
import time

import torch
from _common import save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import ppo_clip
from trajkit.logger import Logger, progress_bar, return_stats

TOKEN_VAR = "TRAJKIT_ENV_TOKEN"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sim-env", default="Pendulum-v1")
    p.add_argument("--sim-kwargs", default="{}", help="JSON gymnasium.make kwargs of the simulator")
    p.add_argument("--real-env", default="Pendulum-v1", help="what the self-started server runs")
    p.add_argument("--real-kwargs", default='{"g": 9.81}', help="JSON make kwargs of the self-started server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="connect to a running server instead of starting one")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the real env's replies")
    p.add_argument("--steps", type=int, default=200_000, help="total env steps, sim and real together")
    p.add_argument("--real-fraction", type=float, default=0.25, help="share of each iteration's steps from real")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-parallel", type=int, default=1, help="simulator worker processes (0/1: in-process)")
    p.add_argument("--max-steps-per-iter", type=int, default=2048)
    p.add_argument("--epoch", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--lam", type=float, default=0.95)
    p.add_argument("--clip-param", type=float, default=0.2)
    p.add_argument("--logdir", default="runs/sim_and_real", help="progress.csv and tb/ (TensorBoard) go here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log table")
    return p.parse_args(argv)


def start_server(env_id: str, make_kwargs: str, token: str) -> tuple[subprocess.Popen, int]:
    """``python -m trajkit.envs ENV_ID`` in another process on a free loopback port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trajkit.envs", env_id, "--port", "0", "--make-kwargs", make_kwargs,
         "--token-env", TOKEN_VAR],
        stdout=subprocess.PIPE, text=True, env={**os.environ, TOKEN_VAR: token},
    )
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], 120)[0]:
        proc.kill()
        raise SystemExit("the env server did not start within 120 s")
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"the env server failed to start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def estimate(epis: list[dict], vf: torch.nn.Module, gamma: float, lam: float) -> tk.Traj:
    """The estimator chain for one source's episodes."""
    traj = tk.Traj.from_epis(epis)
    traj = ef.compute_vs(traj, vf)
    traj = ef.compute_rets(traj, gamma)
    return ef.compute_advs(traj, gamma, lam)


def train(args: argparse.Namespace, real_env: tk.envs.RemoteEnv) -> dict[str, float]:
    """The training loop, given a connected remote env."""
    sim_env = tk.GymEnv(args.sim_env, **json.loads(args.sim_kwargs))
    real = tk.GymEnv(real_env)
    if sim_env.observation_space != real.observation_space or sim_env.action_space != real.action_space:
        raise SystemExit(f"sim and real spaces differ: {sim_env.observation_space}/{sim_env.action_space} vs "
                         f"{real.observation_space}/{real.action_space}")
    pol, vf = tk.make_pol_vf(sim_env)
    optim_pol = torch.optim.Adam(pol.parameters(), args.lr)
    optim_vf = torch.optim.Adam(vf.parameters(), args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(args.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)
    steps, it, n_epis, start = 0, 0, 0, time.time()
    ret_sim = ret_real = float("nan")
    with tk.EpiSampler(sim_env, pol, num_parallel=args.num_parallel, seed=2 * args.seed) as sim_sampler, \
            tk.EpiSampler(real, pol, seed=2 * args.seed + 1) as real_sampler:
        while steps < args.steps:
            budget = min(args.max_steps_per_iter, args.steps - steps)
            n_real = max(1, round(budget * args.real_fraction))
            epis_sim = sim_sampler.sample(pol, max_steps=max(1, budget - n_real))
            epis_real = real_sampler.sample(pol, max_steps=n_real)

            traj = ef.centerize_advs(tk.concat([estimate(epis_sim, vf, args.gamma, args.lam),
                                                estimate(epis_real, vf, args.gamma, args.lam)]))
            result = ppo_clip.train(
                traj=traj, pol=pol, vf=vf, optim_pol=optim_pol, optim_vf=optim_vf, epoch=args.epoch,
                batch_size=args.batch_size, clip_param=args.clip_param, generator=gen,
            )

            steps += traj.num_step
            it += 1
            done_sim = [e for e in epis_sim if not e["sampler_cut"]]  # episodes cut by max_steps would bias returns
            done_real = [e for e in epis_real if not e["sampler_cut"]]
            ret_sim, ret_real = return_stats(done_sim)["return_mean"], return_stats(done_real)["return_mean"]
            n_epis += len(done_sim) + len(done_real)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done_sim + done_real,
                                 result=result, extra={"return_sim": ret_sim, "return_real": ret_real,
                                                       "steps_real": sum(len(e["rews"]) for e in epis_real)})
            bar.update(traj.num_step)
    bar.close()
    logger.close()

    # a checkpoint `trajkit eval` reads: the policy, with the config of the run-layer recipe that builds it
    cfg = tk.run.resolve("ppo", args.sim_env)
    save_run(args.logdir, cfg, {"pol": pol}, iteration=it, env_steps=steps)
    sim_env.close()
    print(f"steps {steps}, {time.time() - start:.0f}s; last mean returns: sim {ret_sim:.1f}, real {ret_real:.1f}")
    return {"steps": steps, "return_sim": ret_sim, "return_real": ret_real}


def run(args: argparse.Namespace) -> dict[str, float]:
    """Start (or find) the real env's server, train, and stop a server this script started."""
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, sim: {args.sim_env} {args.sim_kwargs}, seed: {args.seed}")
    server = None
    if args.port is None:
        token = secrets.token_hex(16)
        server, port = start_server(args.real_env, args.real_kwargs, token)
        print(f"started the real env server (pid {server.pid}): {args.real_env} {args.real_kwargs} on port {port}")
    else:
        token, port = os.environ.get(TOKEN_VAR) or None, args.port
    try:
        return train(args, tk.envs.RemoteEnv(args.host, port, token=token, timeout=args.timeout))
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    run(parse_args())
