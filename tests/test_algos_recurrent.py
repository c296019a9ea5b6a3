"""On-policy algorithms with recurrent models: the same losses and train() functions, on sequence batches."""

from __future__ import annotations

import pytest
import torch

import trajkit as tk
from trajkit import ef, lf
from trajkit.algos import ppo_clip, ppo_kl, trpo, vpg
from trajkit.checkpoint import load_checkpoint, save_checkpoint

ENV = "CartPoleNoVel-v1"


def models(seed: int = 0, rnn_vf: bool = True) -> tuple[tk.CategoricalPol, tk.DeterministicSVfunc]:
    torch.manual_seed(seed)
    env = tk.GymEnv(ENV)
    pol = tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.lstm(4, 2, core_size=8, head=(8,)))
    vf_net = tk.nets.gru(4, 1, core_size=8) if rnn_vf else tk.nets.mlp(4, 1, hidden=(8,))
    return pol, tk.DeterministicSVfunc(env.observation_space, vf_net)


def prepared(pol, vf, steps: int = 160, continuing: bool = False) -> tk.Traj:
    with tk.EpiSampler(ENV, pol, num_envs_per_worker=2, seed=0, continuing=continuing) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=steps))
    traj = ef.compute_vs(traj, vf)
    traj = ef.compute_rets(traj, gamma=0.99)
    traj = ef.centerize_advs(ef.compute_advs(traj, gamma=0.99, lam=0.95))
    return ef.compute_h_masks(traj)


@pytest.mark.parametrize("seq_len, burn_in", [(None, 0), (5, 2)])
def test_forward_rows_runs_each_sequence_from_its_stored_state_and_keeps_the_masked_steps(seq_len, burn_in):
    pol, vf = models()
    traj = prepared(pol, vf)
    traj = traj.with_columns(step=torch.arange(traj.num_step), real=torch.ones(traj.num_step))
    for batch in traj.iterate_rnn(3, generator=0, seq_len=seq_len, burn_in=burn_in):
        params, rows = lf.forward_rows(pol, batch, ("acs", "step"))
        mask = batch["mask"].bool()
        assert torch.equal(rows["step"], batch["step"][mask])
        ref = []
        for j in range(mask.shape[1]):  # each sequence step by step from the stored state at its start
            n = int(batch["real"][:, j].sum())  # the window's steps (padding is 0)
            hs, out = batch["hs"][0][j : j + 1], []
            for t in range(n):
                p, hs = pol(batch["obs"][t, j : j + 1], hs=hs)
                out.append(p["logits"][0])
            ref.append(torch.stack(out)[mask[:n, j]])
        # rows come time-major: re-order the reference the same way
        order = torch.nonzero(mask)  # (M, 2) of (t, j), sorted by t then j
        by_col = {j: iter(r) for j, r in enumerate(ref)}
        expected = torch.stack([next(by_col[int(j)]) for _, j in order])
        torch.testing.assert_close(params["logits"], expected, rtol=1e-5, atol=1e-6)


def test_losses_on_a_sequence_batch_are_the_losses_of_its_masked_steps():
    """An MLP model on a sequence batch gives exactly the loss of the flat batch of its training steps."""
    env = tk.GymEnv(ENV)
    torch.manual_seed(0)
    pol, vf = tk.CategoricalPol.for_env(env), tk.DeterministicSVfunc.for_env(env)
    traj = prepared(pol, vf)
    batch = next(traj.iterate_rnn(4, generator=1, seq_len=6, burn_in=3))
    mask = batch["mask"].bool()
    flat = {k: v[mask] for k, v in batch.items() if v.shape[:2] == mask.shape}
    for fn in (lambda b: lf.pg_clip(pol, b, 0.2, 0.01), lambda b: lf.pg_kl(pol, b, 1.0), lambda b: lf.pg(pol, b),
               lambda b: lf.surrogate(pol, b), lambda b: lf.monte_carlo(vf, b, 0.5)):
        assert torch.equal(fn(batch)[0], fn(flat)[0])


TRAINERS = {
    "ppo_clip": lambda pol, vf, op, ov, traj, **kw: ppo_clip.train(
        traj=traj, pol=pol, vf=vf, optim_pol=op, optim_vf=ov, epoch=2, batch_size=40, generator=0, **kw
    ),
    "ppo_kl": lambda pol, vf, op, ov, traj, **kw: ppo_kl.train(
        traj=traj, pol=pol, vf=vf, optim_pol=op, optim_vf=ov, epoch=2, batch_size=40, generator=0, **kw
    ),
    "trpo": lambda pol, vf, op, ov, traj, **kw: trpo.train(
        traj=traj, pol=pol, vf=vf, optim_vf=ov, vf_epoch=2, vf_batch_size=40, generator=0,
        **{k: v for k, v in kw.items() if k != "burn_in"},
    ),
    "vpg": lambda pol, vf, op, ov, traj, **kw: vpg.train(
        traj=traj, pol=pol, vf=vf, optim_pol=op, optim_vf=ov, vf_epoch=2, vf_batch_size=40, generator=0,
        **{k: v for k, v in kw.items() if k != "burn_in"},
    ),
}


@pytest.mark.parametrize("chunks", [False, True])
@pytest.mark.parametrize("algo", sorted(TRAINERS))
def test_every_on_policy_train_updates_recurrent_models(algo, chunks):
    pol, vf = models()
    traj = prepared(pol, vf)
    kw = {}
    if chunks:
        traj = ef.compute_hs(traj, vf, key="vf_hs")
        kw = {"seq_len": 8, "burn_in": 2}
    before = [p.detach().clone() for p in [*pol.parameters(), *vf.parameters()]]
    op, ov = torch.optim.Adam(pol.parameters(), 1e-3), torch.optim.Adam(vf.parameters(), 1e-3)
    result = TRAINERS[algo](pol, vf, op, ov, traj, **kw)
    after = [*pol.parameters(), *vf.parameters()]
    changed = [not torch.equal(a, b) for a, b in zip(after, before, strict=True)]
    n_pol = len(list(pol.parameters()))
    assert all(changed[n_pol:])  # every value-function tensor, the recurrent core's included, is trained
    if algo != "trpo" or result.diagnostics["step_frac"] > 0:  # TRPO may reject its step
        assert all(changed[:n_pol])
    for name in ("pol_loss", "vf_loss"):
        assert torch.isfinite(torch.tensor(result.losses[name])).all()


def test_ppo_clip_takes_a_recurrent_policy_with_an_mlp_value_function_and_continuing_pieces():
    pol, vf = models(rnn_vf=False)
    traj = prepared(pol, vf, continuing=True)
    op, ov = torch.optim.Adam(pol.parameters(), 1e-3), torch.optim.Adam(vf.parameters(), 1e-3)
    result = ppo_clip.train(traj=traj, pol=pol, vf=vf, optim_pol=op, optim_vf=ov, epoch=1, batch_size=40,
                            seq_len=10)
    assert result.diagnostics["epochs_run"] == 1.0


def test_recurrent_training_names_what_is_missing():
    pol, vf = models()
    traj = prepared(pol, vf)
    op, ov = torch.optim.Adam(pol.parameters(), 1e-3), torch.optim.Adam(vf.parameters(), 1e-3)
    missing = r"DeterministicSVfunc is recurrent .* run ef.compute_hs\(traj, model, key='vf_hs'\)"
    with pytest.raises(ValueError, match=missing):
        ppo_clip.train(traj=traj, pol=pol, vf=vf, optim_pol=op, optim_vf=ov, epoch=1, batch_size=40, seq_len=8)
    env = tk.GymEnv(ENV)
    mlp_pol, mlp_vf = tk.CategoricalPol.for_env(env), tk.DeterministicSVfunc.for_env(env)
    with pytest.raises(ValueError, match="seq_len=8 and burn_in=0 apply to recurrent models only"):
        ppo_clip.train(traj=traj, pol=mlp_pol, vf=mlp_vf, optim_pol=torch.optim.Adam(mlp_pol.parameters()),
                       optim_vf=torch.optim.Adam(mlp_vf.parameters()), epoch=1, batch_size=40, seq_len=8)


def test_burn_in_steps_only_warm_the_state():
    """No gradient reaches a burn-in step's observation; every training step's gets one; values match a full run."""
    pol, vf = models()
    traj = prepared(pol, vf)
    batch = next(traj.iterate_rnn(6, generator=2, seq_len=4, burn_in=3))
    mask = batch["mask"].bool()
    assert bool((~mask[0]).any())  # some sequences do have burn-in steps
    obs = batch["obs"].clone().requires_grad_(True)
    params, _ = lf.forward_rows(pol, {**batch, "obs": obs}, ("acs",))
    params["logits"].sum().backward()
    grad = obs.grad.abs().sum(-1)
    first_train = mask.float().argmax(0)
    burn = torch.arange(mask.shape[0]).unsqueeze(1) < first_train.unsqueeze(0)
    assert not bool(grad[burn].any()) and bool((grad[mask] > 0).all())
    with torch.no_grad():  # the same outputs as one run over burn-in and training steps together
        full, _ = pol(batch["obs"], hs=batch["hs"][0], h_masks=batch["h_masks"])
    torch.testing.assert_close(params["logits"].detach(), full["logits"][mask], rtol=1e-5, atol=1e-6)


def _iterations(pol, vf, optims, sampler, gen, n: int) -> None:
    for _ in range(n):
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=96))
        traj = ef.compute_vs(traj, vf)
        traj = ef.compute_rets(traj, gamma=0.99)
        traj = ef.compute_h_masks(ef.centerize_advs(ef.compute_advs(traj, gamma=0.99, lam=0.95)))
        traj = ef.compute_hs(traj, vf, key="vf_hs")
        ppo_clip.train(traj=traj, pol=pol, vf=vf, optim_pol=optims[0], optim_vf=optims[1], epoch=2, batch_size=32,
                       seq_len=8, burn_in=2, generator=gen)


def test_a_checkpoint_resumes_recurrent_ppo_exactly(tmp_path):
    def fresh():
        pol, vf = models(seed=3)
        optims = (torch.optim.Adam(pol.parameters(), 1e-3), torch.optim.Adam(vf.parameters(), 1e-3))
        return pol, vf, optims, tk.EpiSampler(ENV, pol, num_envs_per_worker=2, seed=0), torch.Generator().manual_seed(0)

    pol, vf, optims, sampler, gen = fresh()
    with sampler:
        _iterations(pol, vf, optims, sampler, gen, 2)
        state = {"pol": pol, "vf": vf, "optim_pol": optims[0], "optim_vf": optims[1], "sampler": sampler, "gen": gen}
        save_checkpoint(tmp_path / "ck.pt", state)
        _iterations(pol, vf, optims, sampler, gen, 2)
    pol2, vf2, optims2, sampler2, gen2 = fresh()
    with sampler2:
        targets = {"pol": pol2, "vf": vf2, "optim_pol": optims2[0], "optim_vf": optims2[1], "sampler": sampler2,
                   "gen": gen2}
        load_checkpoint(tmp_path / "ck.pt", targets)
        _iterations(pol2, vf2, optims2, sampler2, gen2, 2)
    for a, b in zip([*pol.parameters(), *vf.parameters()], [*pol2.parameters(), *vf2.parameters()], strict=True):
        assert torch.equal(a, b)
