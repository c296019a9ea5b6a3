"""Distributions (``trajkit.pds``) against ``torch.distributions`` references, with argument validation on."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from torch.distributions import (
    Categorical,
    Independent,
    Normal,
    TanhTransform,
    TransformedDistribution,
    kl_divergence,
)

import trajkit as tk
from trajkit import pds

B, A = 64, 3
NVEC = [2, 5, 3]


@pytest.fixture(autouse=True)
def validate_args():
    """Every test here runs with torch's distribution argument validation switched on."""
    before = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(True)
    yield
    torch.distributions.Distribution.set_default_validate_args(before)


def gaussian_params(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"mean": torch.randn(B, A, generator=g), "log_std": torch.rand(B, A, generator=g) * 2 - 1.5}


def torch_normal(p: dict[str, torch.Tensor]) -> Independent:
    return Independent(Normal(p["mean"], p["log_std"].exp()), 1)


def logits(seed: int, n: int) -> torch.Tensor:
    return torch.randn(B, n, generator=torch.Generator().manual_seed(seed)) * 2


# ---------------------------------------------------------------------- Gaussian
def test_gaussian_llh_kl_ent_match_torch():
    pd = pds.GaussianPd()
    p, q = gaussian_params(0), gaussian_params(1)
    x = torch.randn(B, A, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(pd.llh(x, p), torch_normal(p).log_prob(x))
    torch.testing.assert_close(pd.kl_pq(p, q), kl_divergence(torch_normal(p), torch_normal(q)))
    torch.testing.assert_close(pd.ent(p), torch_normal(p).entropy())
    assert torch.equal(pd.mode(p), p["mean"])
    assert torch.allclose(pd.kl_pq(p, p), torch.zeros(B), atol=1e-6)


def test_gaussian_samples_follow_the_params_and_the_generator():
    pd = pds.GaussianPd()
    p = {
        "mean": torch.tensor([[1.0, -2.0]]).expand(20000, 2),
        "log_std": torch.tensor([[0.0, -1.0]]).expand(20000, 2),
    }
    x = pd.sample(p, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.mean(0), torch.tensor([1.0, -2.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(x.std(0), torch.tensor([1.0, torch.e**-1]), atol=0.03, rtol=0)
    again = pd.sample(p, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)


# ---------------------------------------------------------------------- Categorical
def test_categorical_llh_kl_ent_match_torch():
    pd = pds.CategoricalPd()
    p, q = {"logits": logits(0, 4)}, {"logits": logits(1, 4)}
    x = torch.randint(4, (B,), generator=torch.Generator().manual_seed(2))
    tp, tq = Categorical(logits=p["logits"]), Categorical(logits=q["logits"])
    torch.testing.assert_close(pd.llh(x, p), tp.log_prob(x))
    torch.testing.assert_close(pd.kl_pq(p, q), kl_divergence(tp, tq))
    torch.testing.assert_close(pd.ent(p), tp.entropy())
    assert torch.equal(pd.mode(p), p["logits"].argmax(-1))


def test_categorical_sample_frequencies_match_probabilities():
    pd = pds.CategoricalPd()
    probs = torch.tensor([0.1, 0.6, 0.3])
    n = 20000
    x = pd.sample({"logits": probs.log().expand(n, 3)}, torch.Generator().manual_seed(0))
    freq = torch.bincount(x, minlength=3).float() / n
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)


# ---------------------------------------------------------------------- MultiCategorical
def test_multicategorical_with_unequal_nvec_matches_independent_torch_categoricals():
    pd = pds.MultiCategoricalPd(NVEC)
    p, q = {"logits": logits(0, sum(NVEC))}, {"logits": logits(1, sum(NVEC))}
    g = torch.Generator().manual_seed(2)
    x = torch.stack([torch.randint(n, (B,), generator=g) for n in NVEC], -1)
    tps = [Categorical(logits=lg) for lg in p["logits"].split(NVEC, -1)]
    tqs = [Categorical(logits=lg) for lg in q["logits"].split(NVEC, -1)]
    torch.testing.assert_close(pd.llh(x, p), sum(d.log_prob(x[:, i]) for i, d in enumerate(tps)))
    torch.testing.assert_close(
        pd.kl_pq(p, q), sum(kl_divergence(a, b) for a, b in zip(tps, tqs, strict=True))
    )
    torch.testing.assert_close(pd.ent(p), sum(d.entropy() for d in tps))
    s = pd.sample(p, torch.Generator().manual_seed(3))
    assert s.shape == (B, len(NVEC))
    assert all(bool(((s[:, i] >= 0) & (s[:, i] < n)).all()) for i, n in enumerate(NVEC))
    assert torch.equal(pd.mode(p), torch.stack([d.probs.argmax(-1) for d in tps], -1))


# ---------------------------------------------------------------------- Squashed Gaussian
def tanh_normal(p: dict[str, torch.Tensor]) -> TransformedDistribution:
    return TransformedDistribution(Normal(p["mean"], p["log_std"].exp()), [TanhTransform()])


def test_squashed_gaussian_llh_matches_transformed_distribution():
    pd = pds.SquashedGaussianPd()
    p = gaussian_params(0)
    x = torch.tanh(torch.randn(B, A, generator=torch.Generator().manual_seed(1)) * 1.5)
    torch.testing.assert_close(pd.llh(x, p), tanh_normal(p).log_prob(x).sum(-1), atol=1e-4, rtol=1e-4)
    assert torch.equal(pd.mode(p), torch.tanh(p["mean"]))


def test_squashed_gaussian_rsample_llh_matches_and_is_differentiable():
    pd = pds.SquashedGaussianPd()
    p = {k: v.clone().requires_grad_() for k, v in gaussian_params(2).items()}
    acs, llh = pd.rsample_with_llh(p, torch.Generator().manual_seed(3))
    assert bool(((acs > -1) & (acs < 1)).all())
    keep = acs.abs().max(-1).values < 0.999  # away from float32 saturation of tanh
    ref = tanh_normal({k: v.detach()[keep] for k, v in p.items()}).log_prob(acs.detach()[keep]).sum(-1)
    torch.testing.assert_close(llh.detach()[keep], ref, atol=1e-3, rtol=1e-3)
    (acs.sum() + llh.sum()).backward()
    assert p["mean"].grad is not None and torch.isfinite(p["mean"].grad).all()


# ---------------------------------------------------------------------- Deterministic
def test_deterministic_pd_never_builds_a_zero_scale_normal(monkeypatch):
    built = []

    class SpyNormal(Normal):
        def __init__(self, loc, scale, validate_args=None):
            built.append(torch.as_tensor(scale))
            super().__init__(loc, scale, validate_args)

    monkeypatch.setattr(torch.distributions, "Normal", SpyNormal)
    monkeypatch.setattr(torch.distributions.normal, "Normal", SpyNormal)
    pd = pds.DeterministicPd()
    p = {"mean": torch.randn(B, A)}
    assert torch.equal(pd.sample(p, torch.Generator().manual_seed(0)), p["mean"])
    assert torch.equal(pd.mode(p), p["mean"])
    assert torch.equal(pd.kl_pq(p, p), torch.zeros(B))
    assert torch.equal(pd.ent(p), torch.zeros(B))
    with pytest.raises(ValueError, match="no log-likelihood"):
        pd.llh(p["mean"], p)
    box = gym.spaces.Box(-2.0, 2.0, (A,))
    pol = tk.DeterministicPol(gym.spaces.Box(-1.0, 1.0, (4,)), box, tk.nets.mlp(4, A, hidden=(8,)))
    acs, params = pol.act(torch.randn(5, 4))
    assert torch.equal(acs, params["mean"])
    assert all(bool((s > 0).all()) for s in built), "a zero-scale Normal was built"
