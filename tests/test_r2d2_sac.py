"""R2D2-style SAC: the sequence replay buffer, sequence priorities, late inputs of a recurrent net, the loss,
train() and the run layer."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import ef, lf_seq
from trajkit.algos import r2d2_sac
from trajkit.seq_buffer import SeqReplayBuffer

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
BOX = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


def _traj(lens: list[int], terminated: list[bool], continued: list[bool] | None = None, hs_dim: int = 0) -> tk.Traj:
    """Episodes whose obs[t] = (episode, t, 0), acs = t / 10, rews = episode * 100 + t; final obs (e, len, 1)."""
    epis = []
    for e, (n, term) in enumerate(zip(lens, terminated, strict=True)):
        t = np.arange(n, dtype=np.float32)
        epi = {
            "obs": np.stack([np.full(n, e, np.float32), t, np.zeros(n, np.float32)], 1),
            "acs": (t / 10).reshape(n, 1),
            "rews": e * 100 + t,
            "terminated": term,
            "final_obs": np.array([e, n, 1], np.float32),
        }
        if continued is not None:
            epi["continued"] = continued[e]
        if hs_dim:
            epi["hs"] = np.stack([np.full(hs_dim, 1000 * e + k, np.float32) for k in range(n)])
        epis.append(epi)
    return tk.Traj.from_epis(epis)


def _reference_windows(traj: tk.Traj, seq_len: int, burn_in: int, stride: int) -> list[dict]:
    """Loop-by-loop windows: the obviously-correct version of SeqReplayBuffer._sequences."""
    out = []
    bounds = traj.bounds.tolist()
    cont = traj.epi_col("continued").tolist() if "continued" in traj.epi else [False] * traj.num_epi
    for e in range(traj.num_epi):
        b, n = bounds[e], bounds[e + 1] - bounds[e]
        s = 0
        while True:
            w = {"obs": [], "acs": [], "rews": [], "mask": [], "burn": [], "h_masks": [], "hs": None}
            for j in range(burn_in + seq_len + 1):
                p = s - burn_in + j  # position in the episode
                real = 0 <= p < n
                if real:
                    w["obs"].append(traj["obs"][b + p].tolist())
                elif p == n:
                    w["obs"].append(traj.epi_col("final_obs")[e].tolist())
                else:
                    w["obs"].append([0.0, 0.0, 0.0])
                w["h_masks"].append(1.0 if (p == 0 and not cont[e]) else 0.0)
                if real and w["hs"] is None and "hs" in traj:
                    w["hs"] = traj["hs"][b + p].tolist()
                if j < burn_in + seq_len:
                    w["acs"].append(traj["acs"][b + p].tolist() if real else [0.0])
                if j < burn_in:
                    w["burn"].append(float(real))
                elif j < burn_in + seq_len:
                    w["rews"].append(float(traj["rews"][b + p]) if real else 0.0)
                    w["mask"].append(float(real))
            out.append(w)
            if s + seq_len >= n:
                break
            s += stride
    return out


@pytest.mark.parametrize(("seq_len", "burn_in", "stride"), [(2, 1, 1), (3, 2, 2), (4, 0, 4), (8, 3, 4)])
def test_sequences_match_a_loop_by_loop_reference(seq_len: int, burn_in: int, stride: int) -> None:
    traj = _traj([5, 3, 1, 9], [True, False, True, False], continued=[False, True, False, False], hs_dim=2)
    buf = SeqReplayBuffer(100, seq_len, burn_in, stride=stride, per_alpha=0.0, hs_dim=2)
    slots = buf.add(traj)
    ref = _reference_windows(traj, seq_len, burn_in, stride)
    assert len(slots) == len(buf) == len(ref)
    got = buf.state_dict()["cols"]
    for i, w in enumerate(ref):
        assert got["obs"][i].tolist() == w["obs"], i
        assert got["acs"][i].tolist() == w["acs"]
        assert got["rews"][i].tolist() == w["rews"]
        assert got["mask"][i].tolist() == w["mask"]
        assert got["burn_mask"][i].tolist() == w["burn"]
        assert got["h_masks"][i].tolist() == w["h_masks"]
        assert got["hs"][i].tolist() == w["hs"]
    # terminals only at the last training step of a terminated episode
    assert got["terminals"].sum() == sum(1 for w in ref for o in w["obs"] if o[2] == 1.0 and o[0] in (0.0, 2.0))


def test_batches_are_time_first_with_weights_and_the_ring_overwrites_the_oldest() -> None:
    buf = SeqReplayBuffer(4, seq_len=2, burn_in=1, stride=2)
    buf.add(_traj([6], [True]))  # 3 windows
    buf.add(_traj([1, 4], [True, False]))  # 3 more: the two oldest windows are overwritten
    assert len(buf) == 4
    batch = buf.sample(5, per_beta=0.4, generator=0)
    assert batch["obs"].shape == (4, 5, 3) and batch["acs"].shape == (3, 5, 1)
    assert batch["rews"].shape == batch["mask"].shape == (2, 5) and batch["burn_mask"].shape == (1, 5)
    assert batch["weights"].shape == (5,) and float(batch["weights"].max()) == 1.0
    assert "hs" not in batch
    # first training rewards: the first Traj's windows 0, 2, 4; the second's 0, 100, 102 overwrite 0 and 2
    assert buf.state_dict()["cols"]["rews"][:, 0].tolist() == [100.0, 102.0, 4.0, 0.0]
    with pytest.raises(ValueError, match="empty"):
        SeqReplayBuffer(4, 2).sample(1, 0.4)


def test_priorities_steer_the_draws_and_survive_a_checkpoint() -> None:
    buf = SeqReplayBuffer(8, seq_len=2, stride=2, per_alpha=1.0)
    buf.add(_traj([8], [False]))  # 4 windows
    buf.update_pris(torch.arange(4), torch.tensor([0.0, 0.0, 0.0, 5.0]))
    idx = buf.sample(64, 0.4, generator=1)["idx"]
    assert (idx == 3).float().mean() > 0.99
    again = SeqReplayBuffer(8, seq_len=2, stride=2, per_alpha=1.0)
    again.load_state_dict(copy.deepcopy(buf.state_dict()))
    a, b = buf.sample(7, 0.5, generator=3), again.sample(7, 0.5, generator=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="settings"):
        SeqReplayBuffer(8, seq_len=3).load_state_dict(buf.state_dict())
    with pytest.raises(ValueError, match="non-finite"):
        buf.update_pris(torch.tensor([0]), torch.tensor([float("nan")]))


def test_a_traj_without_states_is_stored_with_zero_start_states() -> None:
    buf = SeqReplayBuffer(10, seq_len=2, hs_dim=3)
    buf.add(_traj([4], [True]))  # e.g. uniform warm-up actions: no hs
    buf.add(_traj([2], [True], hs_dim=3))
    hs = buf.state_dict()["cols"]["hs"]
    assert hs.shape == (4, 3) and not hs[:3].any() and hs[3].tolist() == [0.0, 0.0, 0.0]  # episode 0, step 0
    with pytest.raises(ValueError, match="hs_dim=3"):
        buf.add(_traj([2], [True], hs_dim=2))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="stride"):
        SeqReplayBuffer(4, seq_len=2, stride=3)
    with pytest.raises(ValueError, match="seq_len"):
        SeqReplayBuffer(4, seq_len=0)


def test_compute_seq_pris_against_a_loop() -> None:
    g = torch.Generator().manual_seed(0)
    td = torch.rand(6, 5, generator=g)
    mask = (torch.rand(6, 5, generator=g) > 0.3).float()
    mask[:, 4] = 0.0
    got = ef.compute_seq_pris(td, mask, eta=0.9)
    for b in range(5):
        vals = [float(td[t, b]) for t in range(6) if mask[t, b]]
        want = 0.0 if not vals else 0.9 * max(vals) + 0.1 * sum(vals) / len(vals)
        assert float(got[b]) == pytest.approx(want, rel=1e-6)
    before = td.clone()
    ef.compute_seq_pris(td, mask)
    assert torch.equal(td, before)  # pure
    with pytest.raises(ValueError, match=r"\(L, B\)"):
        ef.compute_seq_pris(td, mask[:, :2])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_late_inputs_skip_the_core(kind: str) -> None:
    torch.manual_seed(0)
    build = tk.nets.lstm if kind == "lstm" else tk.nets.gru
    net = build(5, 1, torso=(6,), core_size=4, head=(3,), late_dim=2)
    x = torch.randn(7, 3, 5)
    h_masks = torch.zeros(7, 3)
    h_masks[3, 1] = 1.0
    out, hs = net(x, net.init_hs(3), h_masks)
    x2 = x.clone()
    x2[..., 3:] = torch.randn(7, 3, 2)  # other late inputs: the same state, other outputs
    out2, hs2 = net(x2, net.init_hs(3), h_masks)
    assert torch.equal(hs, hs2) and not torch.allclose(out, out2)
    h, steps = net.init_hs(3), []
    for t in range(7):  # the sequence forward equals the step-by-step forward
        o, h = net(x[t : t + 1], h, h_masks[t : t + 1])
        steps.append(o)
    torch.testing.assert_close(torch.cat(steps), out, rtol=1e-6, atol=1e-6)  # up to matrix-product bits
    torch.testing.assert_close(h, hs, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="late_dim"):
        build(3, 1, late_dim=3)


def _models(recurrent: bool = True):
    torch.manual_seed(0)
    env = tk.GymEnv("PendulumNoVel-v1")
    ob, ac = env.observation_space, env.action_space
    if recurrent:
        pol = tk.SquashedGaussianPol(ob, ac, tk.nets.lstm(3, 2, core_size=8, head=(8,), orthogonal=False))
        qfs = [tk.DeterministicSAVfunc(ob, ac, tk.nets.lstm(4, 1, core_size=8, head=(8,), late_dim=1)) for _ in "12"]
    else:
        pol = tk.SquashedGaussianPol.for_env(env, hidden=(8,))
        qfs = [tk.DeterministicSAVfunc.for_env(env, hidden=(8,)) for _ in "12"]
    return env, pol, qfs


def test_stored_state_and_burn_in_reproduce_the_state_the_policy_acted_with() -> None:
    env, pol, _ = _models()
    with tk.EpiSampler(env, pol, seed=0) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=230))  # a 200-step episode and a 30-step cut
    buf = SeqReplayBuffer(100, seq_len=8, burn_in=4, stride=8, per_alpha=0.0, hs_dim=pol.net.hs_dim)
    buf.add(traj)
    batch = buf.sample(16, 0.0, generator=0)
    hs = lf_seq.warm_hs(pol, batch, "hs")
    # the state at each sequence's first training step is the one the sampler stored there
    first_train_obs = batch["obs"][4]  # (B, 3): (cos, sin, 0) of that step
    for b in range(16):
        step = int(torch.nonzero((traj["obs"] == first_train_obs[b]).all(1))[0])
        torch.testing.assert_close(hs[b], traj["hs"][step], atol=1e-6, rtol=0)


def _step(model, obs, *acs, hs, h_masks):
    """One step of one sequence: ``model``'s output and new state."""
    return model(obs.unsqueeze(0), *(a.unsqueeze(0) for a in acs), hs=hs, h_masks=h_masks.unsqueeze(0))


def _reference_r2d2_sac(pol, qfs, tqfs, log_alpha, batch, gamma, target_ent, g):
    """The loss computed sequence by sequence and step by step (the obviously-correct version)."""
    k, big_l, b = batch["burn_mask"].shape[0], batch["mask"].shape[0], batch["mask"].shape[1]
    obs, acs, hm, burn = batch["obs"], batch["acs"], batch["h_masks"], batch["burn_mask"]

    def run(model, j, start, slots, ac_seq):  # outputs of sequence j at training slots k .. k + slots - 1
        hs = start
        for t in range(k):  # real burn-in steps only
            if burn[t, j]:
                _, hs = _step(model, obs[t, j : j + 1], *((acs[t, j : j + 1],) if ac_seq is not None else ()),
                              hs=hs, h_masks=hm[t, j : j + 1])
        outs = []
        for t in range(slots):
            extra = (ac_seq[t, j : j + 1],) if ac_seq is not None else ()
            out, hs = _step(model, obs[k + t, j : j + 1], *extra, hs=hs, h_masks=hm[k + t, j : j + 1])
            outs.append(out)
        return outs

    per_seq = [run(pol, j, batch["hs"][j : j + 1], big_l + 1, None) for j in range(b)]
    params = {n: torch.stack([torch.cat([o[n] for o in seq]) for seq in per_seq], 1).squeeze(2)
              for n in per_seq[0][0]}
    params = {n: v.reshape(big_l + 1, b, -1) for n, v in params.items()}
    pi_acs, llh = pol.pd.rsample_with_llh(params, g)
    next_acs, next_llh = pol.pd.rsample_with_llh(params, g)
    alpha = log_alpha.detach().exp()

    def q_table(q, ac_seq, slots):  # (slots, B)
        zero = q.init_hs(1)
        return torch.stack([torch.cat(run(q, j, zero, slots, ac_seq)) for j in range(b)], 1).reshape(slots, b)

    with torch.no_grad():
        next_q = torch.min(*(q_table(q, next_acs.detach(), big_l + 1)[1:] for q in tqfs))
        y = batch["rews"] + gamma * (1 - batch["terminals"]) * (next_q - alpha * next_llh[1:])
    m, w = batch["mask"], batch["weights"]
    qs = [q_table(q, acs[k:], big_l) for q in qfs]
    qf_loss = sum(0.5 * ((y - q).pow(2) * m * w).sum() / m.sum() for q in qs)
    q_pi = torch.min(*(q_table(q, pi_acs[:big_l], big_l) for q in qfs))
    pol_loss = ((alpha * llh[:big_l] - q_pi) * m).sum() / m.sum()
    alpha_loss = -(log_alpha * (llh[:big_l].detach() + target_ent) * m).sum() / m.sum()
    return qf_loss, pol_loss, alpha_loss


def test_the_loss_equals_a_sequence_by_sequence_step_by_step_reference() -> None:
    env, pol, qfs = _models()
    with tk.EpiSampler(env, pol, seed=1) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=260))
    buf = SeqReplayBuffer(100, seq_len=6, burn_in=3, stride=5, per_alpha=1.0, hs_dim=pol.net.hs_dim)
    buf.add(traj)
    buf.update_pris(torch.arange(len(buf)), torch.rand(len(buf), generator=torch.Generator().manual_seed(0)))
    batch = buf.sample(6, per_beta=0.5, generator=2)
    tqfs = [copy.deepcopy(q) for q in qfs]
    for q in tqfs:  # targets that differ from the critics
        torch.nn.utils.vector_to_parameters(torch.nn.utils.parameters_to_vector(q.parameters()) * 0.9, q.parameters())
    log_alpha = torch.tensor(-0.7, requires_grad=True)
    loss, info = lf_seq.r2d2_sac(pol, *qfs, *tqfs, log_alpha, batch, 0.97, -1.0, torch.Generator().manual_seed(5))
    qf_loss, pol_loss, alpha_loss = _reference_r2d2_sac(pol, qfs, tqfs, log_alpha, batch, 0.97, -1.0,
                                                        torch.Generator().manual_seed(5))
    for got, want in ((info["qf_loss"], qf_loss), (info["pol_loss"], pol_loss), (info["alpha_loss"], alpha_loss)):
        torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, (qf_loss + pol_loss + alpha_loss), rtol=1e-5, atol=1e-5)


def test_train_learns_something_updates_priorities_and_refuses_bad_inputs() -> None:
    env, pol, (qf1, qf2) = _models()
    with tk.EpiSampler(env, pol, seed=0) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=400))
    buf = SeqReplayBuffer(200, seq_len=8, burn_in=2, hs_dim=pol.net.hs_dim)
    buf.add(traj)
    tq1, tq2 = copy.deepcopy(qf1), copy.deepcopy(qf2)
    log_alpha = torch.zeros((), requires_grad=True)
    optim_qf = torch.optim.Adam([*qf1.parameters(), *qf2.parameters()], 1e-3)
    kw = dict(buffer=buf, pol=pol, qf1=qf1, qf2=qf2, target_qf1=tq1, target_qf2=tq2, log_alpha=log_alpha,
              optim_pol=torch.optim.Adam(pol.parameters(), 1e-3), optim_qf=optim_qf,
              optim_alpha=torch.optim.Adam([log_alpha], 1e-3), batch_size=8, generator=0)
    before = [p.detach().clone() for p in (*pol.parameters(), *qf1.parameters())]
    first = r2d2_sac.train(num_steps=1, **kw)
    result = r2d2_sac.train(num_steps=40, **kw)
    assert result.diagnostics["qf_loss"] < first.diagnostics["qf_loss"]  # the critics fit the targets
    assert all(not torch.equal(a, b) for a, b in zip(before, (*pol.parameters(), *qf1.parameters()), strict=True))
    assert len(set(np.round(buf.tree.leaves()[: len(buf)], 6))) > 2  # priorities set per sequence
    with pytest.raises(ValueError, match="no sequences"):
        r2d2_sac.train(num_steps=1, **{**kw, "buffer": SeqReplayBuffer(4, 8)})
    mlp_env, mlp_pol, _ = _models(recurrent=False)
    with tk.EpiSampler(mlp_env, mlp_pol, seed=0) as sampler:
        mlp_buf = SeqReplayBuffer(200, seq_len=8)
        mlp_buf.add(tk.Traj.from_epis(sampler.sample(mlp_pol, max_steps=50)))
    with pytest.raises(ValueError, match="hs_dim=0"):
        r2d2_sac.train(num_steps=1, **{**kw, "buffer": mlp_buf})
    with pytest.raises(TypeError, match="SeqReplayBuffer"):
        r2d2_sac.train(num_steps=1, **{**kw, "buffer": traj})


def test_mlp_models_train_on_sequences_too() -> None:
    env, pol, (qf1, qf2) = _models(recurrent=False)
    with tk.EpiSampler(env, pol, seed=0) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=300))
    buf = SeqReplayBuffer(100, seq_len=4)
    buf.add(traj)
    log_alpha = torch.zeros((), requires_grad=True)
    result = r2d2_sac.train(
        buffer=buf, pol=pol, qf1=qf1, qf2=qf2, target_qf1=copy.deepcopy(qf1), target_qf2=copy.deepcopy(qf2),
        log_alpha=log_alpha, optim_pol=torch.optim.Adam(pol.parameters()),
        optim_qf=torch.optim.Adam([*qf1.parameters(), *qf2.parameters()]), optim_alpha=None,
        num_steps=3, batch_size=4, generator=0,
    )
    assert np.isfinite(result.diagnostics["qf_loss"]) and float(log_alpha.detach()) == 0.0


# ---------------------------------------------------------------- the run layer: trajkit train r2d2_sac
RUN_HP = {"learning_starts": 100, "grad_ratio": 0.1, "train_freq": 100, "hidden": [8, 8], "seq_len": 8,
          "burn_in": 2, "eval_episodes": 1, "steps_per_iter": 0, "epis_per_iter": 1, "continuing": False,
          "batch_size": 4}


def _run(logdir, steps: int, resume: bool = False, **hp: object):
    from trajkit.run import resolve
    from trajkit.run.runner import train

    cfg = resolve("r2d2_sac", "PendulumNoVel-v1", {**RUN_HP, **hp}, steps=steps, seed=2, checkpoint_every=1)
    return train(cfg, logdir, resume=resume, progress=False, console=False)


def test_a_stopped_r2d2_sac_run_resumes_bit_identically_and_evaluates(tmp_path) -> None:
    from test_resume import _assert_identical, _state

    from trajkit.run.evaluate import load_policy

    full, split = tmp_path / "full", tmp_path / "split"
    _run(full, 400)
    _run(split, 200)
    out = _run(split, 400, resume=True)
    assert out.iteration == 2 and out.env_steps == 400
    # every checkpoint entry, the sequence buffer and its priorities included
    _assert_identical(_state(full / "checkpoint.pt"), _state(split / "checkpoint.pt"))
    pol, _ = load_policy(full)  # what trajkit eval rebuilds
    assert pol.recurrent and pol.net.core.hidden_size == 8 and len(out.eval_returns) == 1


def test_r2d2_sac_settings_are_checked() -> None:
    from trajkit.run import ConfigError, resolve

    with pytest.raises(ConfigError, match="nstep=1"):
        resolve("r2d2_sac", "PendulumNoVel-v1", {"nstep": 3})
    with pytest.raises(ConfigError, match="stride"):
        resolve("r2d2_sac", "PendulumNoVel-v1", {"stride": 50, "seq_len": 20})
    with pytest.raises(ConfigError, match="Box"):
        from trajkit.run.runner import train

        train(resolve("r2d2_sac", "CartPole-v1", {}), "/nonexistent/never", progress=False, console=False)


def test_the_r2d2_sac_example_runs_end_to_end(tmp_path) -> None:
    import os
    import sys

    from trajkit.logger import read_csv
    from trajkit.run.evaluate import load_policy

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
    import run_r2d2_sac

    argv = ["--steps", "300", "--hp", "learning_starts=100", "--hp", "grad_ratio=0.2", "--hp", "hidden=8,8",
            "--hp", "seq_len=8", "--hp", "batch_size=4", "--eval-epis", "1", "--no-progress", "--logdir", str(tmp_path)]
    out = run_r2d2_sac.run(*run_r2d2_sac.parse_args(argv))
    assert out["steps"] == 300 and out["eval_mean"] < 0  # Pendulum's returns are negative: a real evaluation
    rows = read_csv(str(tmp_path / "progress.csv"))
    assert len(rows["iteration"]) == 6 and rows["qf_loss"][-1] > 0  # trained once learning started
    pol, _ = load_policy(tmp_path)
    assert pol.recurrent
