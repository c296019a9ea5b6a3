"""Behaviour cloning from 10 recorded expert episodes, top to bottom.

    python examples/run_behavior_clone.py                    # CartPole-v1, PPO expert
    python examples/run_behavior_clone.py --env Pendulum-v1  # SAC expert

1. Train the expert with the run layer's preset (``ppo`` for CartPole, ``sac`` for
   Pendulum; ``--steps`` its budget), or reuse the run in ``--expert-dir``.
2. Record 10 expert episodes (its mode) into ``expert.npz`` with ``tk.record_epis``
   (what ``trajkit record`` does), and 2 more as held-out validation episodes.
3. Clone: a fresh policy (categorical for Discrete actions, deterministic for Box)
   trained with ``behavior_clone.train`` on the settings of
   ``trajkit/run/presets/imitation.yaml`` (log-likelihood or squared error), printing
   the held-out loss as it goes.
4. Print the expert's and the clone's deterministic evaluations.
"""

from __future__ import annotations

from pathlib import Path

import torch
from _common import expert_policy, imitation_args, print_eval

import trajkit as tk
from trajkit.algos import behavior_clone
from trajkit.run.imitation import BCSettings, make_learner


def run(argv: list[str] | None = None) -> dict[str, float]:
    args = imitation_args(__doc__, "CartPole-v1", argv)
    expert, _ = expert_policy(args.env, args.steps, args.expert_dir)
    out = Path(f"runs/bc_{args.env}_s{args.seed}")
    out.mkdir(parents=True, exist_ok=True)

    data = tk.record_epis(args.env, expert, 10, seed=0, path=out / "expert.npz")
    val = tk.record_epis(args.env, expert, 2, seed=1)
    print(f"expert data: {data.num_epi} episodes, {data.num_step} steps, "
          f"{int(data.epi['terminated'].sum())} terminated, {int(data.epi['truncated'].sum())} truncated")

    s = BCSettings.for_env(args.env)
    torch.manual_seed(args.seed)
    env = tk.GymEnv(args.env)
    pol = make_learner(s.pol, (env.observation_space, env.action_space), s.hidden)
    optim = torch.optim.Adam(pol.parameters(), s.lr)
    gen = torch.Generator().manual_seed(args.seed)
    for done in range(0, s.epoch, max(1, s.epoch // 5)):
        chunk = min(max(1, s.epoch // 5), s.epoch - done)
        result = behavior_clone.train(traj=data, pol=pol, optim_pol=optim, epoch=chunk, batch_size=s.batch_size,
                                      loss=s.loss, generator=gen)
        held_out = behavior_clone.evaluate_loss(traj=val, pol=pol, loss=s.loss)
        print(f"epoch {done + chunk:4d}: train loss {result.losses['bc_loss'][-1]:.4f}, held-out loss {held_out:.4f}")

    expert_ret = print_eval(args.env, expert, args.eval_epis, args.seed, "expert")
    clone_ret = print_eval(args.env, pol, args.eval_epis, args.seed, "behaviour clone")
    return {"expert": expert_ret, "eval_mean": clone_ret}


if __name__ == "__main__":
    run()
