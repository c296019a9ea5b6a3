"""DAgger on CartPole-v1 with an expert callable, top to bottom.

    python examples/run_dagger.py
    python examples/run_dagger.py --seed 1 --rounds 5

The expert is a PPO policy trained with the run layer's preset (``--steps`` its
budget; reused from ``--expert-dir``), handed to DAgger as a plain function of a batch
of observations (any function works: a hand-written controller, a planner, a human).
Each round: roll out the learner (stochastic; the untrained learner in round 0), label
its states with the expert (``dagger.label``), add them to everything so far
(``dagger.aggregate``), retrain (``dagger.train``), and evaluate. Settings:
``trajkit/run/presets/imitation.yaml`` (section ``dagger``).
"""

from __future__ import annotations

import torch
from _common import expert_policy, imitation_args, print_eval

import trajkit as tk
from trajkit.algos import dagger
from trajkit.run.imitation import DAggerSettings, make_learner


def run(argv: list[str] | None = None) -> dict[str, float]:
    args = imitation_args(__doc__, "CartPole-v1", argv,
                          lambda p: p.add_argument("--rounds", type=int, default=None, help="default: the preset's"))
    expert_pol, _ = expert_policy(args.env, args.steps, args.expert_dir)

    def expert(obs: torch.Tensor) -> torch.Tensor:  # any function of observations: (B, obs_dim) -> (B,)
        return expert_pol.act(obs, deterministic=True)[0]

    s = DAggerSettings.for_env(args.env, **({"rounds": args.rounds} if args.rounds else {}))
    env = tk.GymEnv(args.env)
    torch.manual_seed(args.seed)
    pol = make_learner("auto", (env.observation_space, env.action_space), s.hidden)
    optim = torch.optim.Adam(pol.parameters(), s.lr)
    gen = torch.Generator().manual_seed(args.seed)

    data = None
    ret = float("nan")
    with tk.EpiSampler(env, pol, seed=args.seed) as sampler:
        for r in range(s.rounds):
            with torch.no_grad():
                traj = tk.Traj.from_epis(sampler.sample(pol, max_epis=s.epis_per_round))  # the learner's states
            data = dagger.aggregate(data, dagger.label(traj, expert))
            dagger.train(traj=data, pol=pol, optim_pol=optim, epoch=s.epoch, batch_size=s.batch_size, generator=gen)
            ret = print_eval(args.env, pol, args.eval_epis, args.seed, f"round {r}, {data.num_step} labelled steps")
    return {"eval_mean": ret}


if __name__ == "__main__":
    run()
