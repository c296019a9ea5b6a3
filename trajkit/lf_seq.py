"""Losses over stored sequences (``SeqReplayBuffer`` batches): R2D2-style soft actor-critic.

Vocabulary: ``K`` burn-in slots, ``L`` training slots, ``B`` sequences, ``S`` state size.

A batch (:meth:`trajkit.seq_buffer.SeqReplayBuffer.sample`) is time first:
``obs: (K + L + 1, B, ...)``, ``acs: (K + L, B, ...)``, ``rews``, ``terminals``,
``mask: (L, B)``, ``burn_mask: (K, B)``, ``h_masks: (K + L + 1, B)``, optionally the
policy's stored start state ``hs: (B, S)`` and importance ``weights: (B,)``.

Each recurrent model starts at a sequence's first slot (the policy from the stored
``hs``, a Q function from its initial state, zeros: R2D2's zero-state strategy for
the models the sampler did not run), runs the real burn-in slots without gradients
(padded slots before an episode's start are skipped), then runs the observation
slots ``K .. K + L`` as one sequence. Its output at slot ``K + t + 1`` is its output at
the next observation of training step ``t``. An MLP model runs on the same slots as a
batch of steps, so the loss is also plain SAC over sequences.

The critics are meant to be built with ``late_dim`` = the action size
(:func:`trajkit.nets.lstm`): the action then joins after the recurrent core, the state
summarizes the observations only, and ``Q(h_t, a)`` for the policy's action ``a`` is
exact. A critic whose core consumes actions sees the policy's sampled actions in its
history in the policy and target terms (an approximation, documented in
docs/recurrent.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from trajkit.checks import check_float
from trajkit.lf import Info, _frozen
from trajkit.pds import SquashedGaussianPd

if TYPE_CHECKING:
    from trajkit.pols import BasePol

Batch = dict[str, torch.Tensor]

__all__ = ["r2d2_sac", "seq_forward", "warm_hs"]


def seq_forward(model: Any, obs: torch.Tensor, *acs: torch.Tensor, hs: torch.Tensor | None = None,
                h_masks: torch.Tensor | None = None) -> Any:
    """``model``'s output over ``obs: (T, B, ...)`` (and ``acs: (T, B, ...)``): ``(T, B, ...)`` or a dict of them.

    A recurrent model runs the sequence from ``hs: (B, S)`` with resets ``h_masks: (T, B)``;
    an MLP model runs the ``T * B`` steps as one batch.
    """
    if getattr(model, "recurrent", False):
        out, _ = model(obs, *acs, hs=hs, h_masks=h_masks)
        return out
    t, b = obs.shape[:2]
    out = model(obs.reshape(t * b, *obs.shape[2:]), *(a.reshape(t * b, *a.shape[2:]) for a in acs))
    if isinstance(out, dict):
        return {k: v.reshape(t, b, *v.shape[1:]) for k, v in out.items()}
    return out.reshape(t, b, *out.shape[1:])


def warm_hs(model: Any, batch: Batch, key: str | None = None) -> torch.Tensor | None:
    """A recurrent model's state ``(B, S)`` at the first training slot (None for an MLP model).

    Starts from ``batch[key]`` when given and present, else from ``model.init_hs(B)``,
    and runs the real burn-in slots (``burn_mask``) without gradients. A sequence's real
    burn-in slots are its last ``n`` of the ``K`` (the slots before an episode's start are
    padding), so the sequences with the same ``n`` run as one sequence forward.
    """
    if not getattr(model, "recurrent", False):
        return None
    b = batch["mask"].shape[1]
    hs = batch[key] if key is not None and key in batch else model.init_hs(b).to(batch["mask"].device)
    burn = batch["burn_mask"]
    k = burn.shape[0]
    n_real = burn.sum(0).long()  # (B,)
    needs_acs = not hasattr(model, "pd")  # a Q function takes (obs, acs), a policy obs only
    with torch.no_grad():
        hs = hs.clone()
        for n in torch.unique(n_real).tolist():
            if n == 0:
                continue
            cols = torch.nonzero(n_real == n).reshape(-1)
            extra = (batch["acs"][k - n : k, cols],) if needs_acs else ()
            h_masks = batch["h_masks"][k - n : k, cols]
            _, new = model(batch["obs"][k - n : k, cols], *extra, hs=hs[cols], h_masks=h_masks)
            hs[cols] = new
    return hs


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``sum(w m x) / sum(m)`` over ``(L, B)``; ``weights: (B,)`` per sequence (None: 1)."""
    m = mask if weights is None else mask * weights.unsqueeze(0)
    return (x * m).sum() / mask.sum().clamp(min=1.0)


def r2d2_sac(
    pol: BasePol,
    qf1: torch.nn.Module,
    qf2: torch.nn.Module,
    target_qf1: torch.nn.Module,
    target_qf2: torch.nn.Module,
    log_alpha: torch.Tensor,
    batch: Batch,
    gamma: float,
    target_ent: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, Info]:
    """Soft actor-critic on a batch of stored sequences, all three terms in one scalar (as :func:`trajkit.lf.sac`).

    Over the training steps ``t`` (``mask``), with ``alpha = exp(log_alpha)`` detached:

    * critics: ``sum_i 0.5 * mean(w (Q_i(h_t, a_t) - y_t)**2)``,
      ``y_t = r_t + gamma (1 - d_t) (min_i Q_i'(h_{t+1}, a~') - alpha log pi(a~'|h_{t+1}))``;
    * policy: ``mean(alpha log pi(a~|h_t) - min_i Q_i(h_t, a~))`` with the critics frozen;
    * temperature: ``-mean(log_alpha (log pi(a~|h_t) + target_ent))``.

    ``w`` is the sequence's importance weight (1 without one); means are over the
    training steps. ``info``: ``q1_mean``, ``pol_loss``, ``qf_loss``, ``alpha_loss``,
    ``alpha``, ``ent``, and ``td_errors: (L, B)`` (0.0 off the mask).
    """
    pd = pol.pd
    if not isinstance(pd, SquashedGaussianPd):
        raise TypeError(
            f"r2d2_sac needs a tanh-squashed Gaussian policy (SquashedGaussianPol), got {type(pol).__name__}"
        )
    check_float("target_ent", target_ent)
    for col in ("obs", "acs", "rews", "terminals", "mask", "burn_mask", "h_masks"):
        if col not in batch:
            raise KeyError(f"r2d2_sac needs a SeqReplayBuffer batch; column {col!r} is missing")
    k, big_l = batch["burn_mask"].shape[0], batch["mask"].shape[0]
    obs = batch["obs"][k:]  # (L + 1, B, ...): the training slots, then the last one's next observation
    h_masks, acs = batch["h_masks"][k:], batch["acs"][k:]
    mask, w = batch["mask"], batch.get("weights")

    def q_seq(q: torch.nn.Module, hs: torch.Tensor | None, q_acs: torch.Tensor) -> torch.Tensor:
        """``q`` over the ``L`` training slots: ``(L, B)``."""
        return seq_forward(q, obs[:big_l], q_acs, hs=hs, h_masks=h_masks[:big_l])

    params = seq_forward(pol, obs, hs=warm_hs(pol, batch, "hs"), h_masks=h_masks)  # (L + 1, B, ...)
    pi_acs, llh = pd.rsample_with_llh(params, generator)
    alpha = log_alpha.detach().exp()
    with torch.no_grad():  # the targets, at the next observations: slots 1 .. L
        next_acs, next_llh = pd.rsample_with_llh(params, generator)
        next_q = torch.min(*(seq_forward(q, obs, next_acs, hs=warm_hs(q, batch), h_masks=h_masks)[1:]
                             for q in (target_qf1, target_qf2)))
        y = batch["rews"] + gamma * (1.0 - batch["terminals"]) * (next_q - alpha * next_llh[1:])
    hs1, hs2 = warm_hs(qf1, batch), warm_hs(qf2, batch)
    q1, q2 = q_seq(qf1, hs1, acs), q_seq(qf2, hs2, acs)
    td1 = (y - q1) * mask
    qf_loss = 0.5 * (_masked_mean(td1.pow(2), mask, w) + _masked_mean((y - q2).pow(2), mask, w))
    with _frozen(qf1, qf2):
        q_pi = torch.min(q_seq(qf1, hs1, pi_acs[:big_l]), q_seq(qf2, hs2, pi_acs[:big_l]))
    llh_t = llh[:big_l]
    pol_loss = _masked_mean(alpha * llh_t - q_pi, mask)
    alpha_loss = -_masked_mean(log_alpha * (llh_t.detach() + target_ent), mask)
    info = {
        "q1_mean": _masked_mean(q1.detach(), mask),
        "pol_loss": pol_loss.detach(),
        "qf_loss": qf_loss.detach(),
        "alpha_loss": alpha_loss.detach(),
        "alpha": alpha,
        "ent": -_masked_mean(llh_t.detach(), mask),
        "td_errors": td1.detach(),
    }
    return qf_loss + pol_loss + alpha_loss, info
