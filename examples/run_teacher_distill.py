"""On-policy teacher distillation on Pendulum-v1: a half-width student matches a SAC teacher, top to bottom.

    python examples/run_teacher_distill.py                   # teacher: SAC, 20k steps; student: 2k steps
    python examples/run_teacher_distill.py --seed 1

The teacher is trained with the run layer's ``sac`` preset (``--steps`` its budget;
reused from ``--expert-dir``). The student, a squashed-Gaussian policy of half the
teacher's hidden width, samples its own episodes (carried across iterations); on all its states so far
``on_pol_teacher_distill.train`` minimizes ``KL(teacher || student)``. Settings:
``trajkit/run/presets/imitation.yaml`` (section ``distill``). The student uses a tenth
of the teacher's env steps.
"""

from __future__ import annotations

import torch
from _common import expert_policy, imitation_args, print_eval

import trajkit as tk
from trajkit.algos import on_pol_teacher_distill
from trajkit.run.imitation import DistillSettings, make_learner


def run(argv: list[str] | None = None) -> dict[str, float]:
    args = imitation_args(__doc__, "Pendulum-v1", argv)
    teacher, teacher_steps = expert_policy(args.env, args.steps, args.expert_dir)

    s = DistillSettings.for_env(args.env)
    env = tk.GymEnv(args.env)
    torch.manual_seed(args.seed)
    student = make_learner("squashed_gaussian", (env.observation_space, env.action_space), s.hidden)
    optim = torch.optim.Adam(student.parameters(), s.lr)
    gen = torch.Generator().manual_seed(args.seed)

    parts: list[tk.Traj] = []
    # continuing=True: an episode cut at steps_per_iter goes on in the next iteration
    with tk.EpiSampler(env, student, seed=args.seed, continuing=True) as sampler:
        for it in range(s.iterations):
            with torch.no_grad():
                parts.append(tk.Traj.from_epis(sampler.sample(student, max_steps=s.steps_per_iter)))
            result = on_pol_teacher_distill.train(traj=tk.concat(parts), student=student, teacher=teacher,
                                                  optim=optim, epoch=s.epoch, batch_size=s.batch_size, generator=gen)
            print(f"iteration {it}: {sum(p.num_step for p in parts)} student steps, KL {result.diagnostics['kl']:.4f}")

    steps = sum(p.num_step for p in parts)
    teacher_ret = print_eval(args.env, teacher, args.eval_epis, args.seed, f"teacher ({teacher_steps} steps)")
    student_ret = print_eval(args.env, student, args.eval_epis, args.seed, f"student ({steps} steps)")
    return {"teacher": teacher_ret, "eval_mean": student_ret, "steps": float(steps)}


if __name__ == "__main__":
    run()
