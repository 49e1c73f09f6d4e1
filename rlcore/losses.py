"""Policy-gradient, value, entropy and KL losses. Each returns ``(loss, metrics)``.

Shapes: ``logp`` is either ``(B,)`` (one log-probability per sample, e.g. a
whole tour or one environment step) or ``(B, L)`` (per token / per decoding
step). ``mask`` has the shape of ``logp`` and marks valid entries (padding is
0). ``advantages`` is ``(B,)`` (broadcast over the sequence) or the shape of
``logp``. ``metrics`` holds plain Python floats, ready for a logger.

How a loss over ``(B, L)`` entries becomes one number is the ``aggregation``,
chosen by name from :data:`AGGREGATIONS` (the choice is what separates GRPO,
DAPO and Dr. GRPO as much as their advantages do).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rlcore import _checks
from rlcore.estimators import explained_variance

__all__ = [
    "AGGREGATIONS",
    "KL_ESTIMATORS",
    "aggregate",
    "all_action_loss",
    "entropy_loss",
    "kl_penalty",
    "ppo_clip_loss",
    "reinforce_loss",
    "topr_loss",
    "value_loss",
]

Metrics = dict[str, float]


def _seq_mean_token_mean(x: Tensor, mask: Tensor, max_len: int | None) -> Tensor:
    per_seq = (x * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
    keep = (mask.sum(dim=1) > 0).to(x.dtype)
    return (per_seq * keep).sum() / keep.sum().clamp_min(1.0)


def _token_mean(x: Tensor, mask: Tensor, max_len: int | None) -> Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def _seq_sum_norm(x: Tensor, mask: Tensor, max_len: int | None) -> Tensor:
    if max_len is None:
        raise ValueError("max_len is required for aggregation 'seq_sum_norm' (Dr. GRPO)")
    _checks.integer("max_len", max_len, minimum=1)
    return (x * mask).sum() / (x.shape[0] * max_len)


def _seq_sum(x: Tensor, mask: Tensor, max_len: int | None) -> Tensor:
    return (x * mask).sum() / x.shape[0]


AGGREGATIONS: dict[str, Callable[[Tensor, Tensor, int | None], Tensor]] = {
    "seq_mean_token_mean": _seq_mean_token_mean,  # GRPO: mean over tokens, then over sequences
    "token_mean": _token_mean,  # DAPO: one mean over every valid token of the batch
    "seq_sum_norm": _seq_sum_norm,  # Dr. GRPO: sequence sums divided by a fixed max length
    "seq_sum": _seq_sum,  # classic REINFORCE: sum over the sequence, mean over the batch
}
"""Name -> ``f(per_entry_loss (B, L), mask (B, L), max_len) -> scalar``."""


def _prepare(
    logp: Tensor, advantages: Tensor, mask: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Validate and bring logp / advantages / mask to ``(B, L)``."""
    _checks.tensor("logp", logp, ndim=(1, 2))
    _checks.tensor("advantages", advantages, ndim=(1, 2))
    _checks.finite("advantages", advantages)
    seq = logp if logp.dim() == 2 else logp.unsqueeze(1)
    if advantages.shape == logp.shape:
        adv = advantages if advantages.dim() == 2 else advantages.unsqueeze(1)
    elif advantages.dim() == 1 and advantages.shape[0] == logp.shape[0]:
        adv = advantages.unsqueeze(1)
    else:
        raise ValueError(
            f"advantages must have shape ({logp.shape[0]},) or {tuple(logp.shape)} to match logp, "
            f"got {tuple(advantages.shape)}"
        )
    adv = adv.to(seq.dtype)
    if mask is None:
        m = torch.ones_like(seq)
    else:
        m = _checks.as_float_mask("mask", mask, "logp", logp)
        m = m if m.dim() == 2 else m.unsqueeze(1)
    return seq, adv.expand_as(seq), m.to(seq.dtype)


def aggregate(
    per_entry: Tensor, mask: Tensor, aggregation: str, max_len: int | None = None
) -> Tensor:
    """Reduce a ``(B, L)`` per-entry loss with the named aggregation."""
    try:
        fn = AGGREGATIONS[aggregation]
    except KeyError:
        raise ValueError(
            f"aggregation must be one of {sorted(AGGREGATIONS)}, got {aggregation!r}"
        ) from None
    return fn(per_entry, mask, max_len)


def _masked_mean(x: Tensor, mask: Tensor) -> float:
    return float((x.detach() * mask).sum() / mask.sum().clamp_min(1.0))


def reinforce_loss(
    logp: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    aggregation: str = "seq_sum",
    max_len: int | None = None,
) -> tuple[Tensor, Metrics]:
    """REINFORCE: ``-A * log pi``, aggregated by name.

    Args:
        logp: ``(B,)`` or ``(B, L)`` log-probabilities of the taken actions.
        advantages: ``(B,)`` or the shape of ``logp``; treated as constants.
        mask: shape of ``logp``, 1 for valid entries.
        aggregation: a key of :data:`AGGREGATIONS`; the default sums over the
            sequence and averages over the batch (a whole tour is one action).
        max_len: the fixed length for ``"seq_sum_norm"``.

    Returns:
        ``(loss, {"loss/policy", "advantage_mean"})``.
    """
    seq, adv, m = _prepare(logp, advantages, mask)
    loss = aggregate(-adv.detach() * seq, m, aggregation, max_len)
    return loss, {"loss/policy": float(loss.detach()), "advantage_mean": _masked_mean(adv, m)}


def all_action_loss(logp: Tensor, advantages: Tensor) -> tuple[Tensor, Metrics]:
    """Minus the expected advantage of a choice whose every candidate was evaluated.

    ``-sum_a pi(a) A(a)``, with ``pi`` renormalised over the ``A`` candidates given. Its
    gradient, ``-sum_a pi(a) grad log pi(a) (A(a) - sum_b pi(b) A(b))``, is the exact policy
    gradient of the choice: no sampled action, no variance from sampling one (the all-action
    gradient of Mean Actor-Critic, Allen et al. 2017, and Expected Policy Gradients, Ciosek and
    Whiteson 2018). Shifting every advantage by the same amount changes nothing. It fits a
    first decision whose every option is rolled out anyway (multi-start training), so that
    each option's advantage is known.

    Args:
        logp: ``(B, A)`` log-probabilities of the candidates (finite).
        advantages: ``(B, A)`` advantage of each candidate; treated as constants.

    Returns:
        ``(loss, {"loss/choice": loss, "choice_entropy": mean entropy of pi})``.
    """
    _checks.tensor("logp", logp, ndim=2)
    _checks.finite("logp", logp)
    _checks.same_shape("advantages", _checks.tensor("advantages", advantages), "logp", logp)
    pi = torch.softmax(logp, dim=-1)
    loss = -(pi * advantages.detach()).sum(dim=-1).mean()
    entropy = -(pi * torch.log_softmax(logp, dim=-1)).sum(dim=-1).mean()
    return loss, {"loss/choice": float(loss.detach()), "choice_entropy": float(entropy.detach())}


def ppo_clip_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    eps_low: float = 0.2,
    eps_high: float | None = None,
    aggregation: str = "token_mean",
    max_len: int | None = None,
) -> tuple[Tensor, Metrics]:
    """PPO's clipped surrogate (Schulman et al. 2017), asymmetric clip as in DAPO.

    ``-min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A)`` with
    ``ratio = exp(logp - old_logp)``.

    Args:
        logp: ``(B,)`` or ``(B, L)`` log-probabilities under the current policy.
        old_logp: same shape, under the policy that collected the data.
        advantages: ``(B,)`` or the shape of ``logp``.
        mask: shape of ``logp``, 1 for valid entries.
        eps_low: lower clip range, ``> 0``.
        eps_high: upper clip range; ``None`` means ``eps_low``.
        aggregation: a key of :data:`AGGREGATIONS`.
        max_len: the fixed length for ``"seq_sum_norm"``.

    Returns:
        ``(loss, metrics)`` with ``loss/policy``, ``approx_kl`` (the k3 estimator,
        as CleanRL logs it), ``clip_fraction`` and ``ratio_mean``.
    """
    eps_low = _checks.positive("eps_low", eps_low)
    eps_high = eps_low if eps_high is None else _checks.positive("eps_high", eps_high)
    _checks.tensor("old_logp", old_logp)
    _checks.same_shape("old_logp", old_logp, "logp", logp)
    seq, adv, m = _prepare(logp, advantages, mask)
    old = old_logp.detach().reshape(seq.shape).to(seq.dtype)
    adv = adv.detach()
    log_ratio = seq - old
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    per_entry = -torch.minimum(ratio * adv, clipped * adv)
    loss = aggregate(per_entry, m, aggregation, max_len)
    with torch.no_grad():
        approx_kl = _masked_mean((ratio - 1.0) - log_ratio, m)
        outside = ((ratio < 1.0 - eps_low) | (ratio > 1.0 + eps_high)).to(seq.dtype)
        metrics = {
            "loss/policy": float(loss.detach()),
            "approx_kl": approx_kl,
            "clip_fraction": _masked_mean(outside, m),
            "ratio_mean": _masked_mean(ratio, m),
        }
    return loss, metrics


def topr_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    aggregation: str = "token_mean",
    max_len: int | None = None,
) -> tuple[Tensor, Metrics]:
    """Tapered off-policy REINFORCE (TOPR, Le Roux et al. 2025).

    Samples with ``A >= 0`` are not reweighted (a supervised push up); samples
    with ``A < 0`` are weighted by ``clip(pi / mu, 0, 1)`` (a constant), which
    keeps pushing probability down from growing without bound off-policy.

    Args and shapes as :func:`ppo_clip_loss`.

    Returns:
        ``(loss, {"loss/policy", "weight_mean_negative"})``.
    """
    _checks.tensor("old_logp", old_logp)
    _checks.same_shape("old_logp", old_logp, "logp", logp)
    seq, adv, m = _prepare(logp, advantages, mask)
    old = old_logp.detach().reshape(seq.shape).to(seq.dtype)
    with torch.no_grad():
        taper = torch.exp(seq - old).clamp(0.0, 1.0)
        weights = torch.where(adv >= 0, torch.ones_like(taper), taper)
    loss = aggregate(-(weights * adv.detach()) * seq, m, aggregation, max_len)
    negative = (adv < 0).to(seq.dtype) * m
    return loss, {
        "loss/policy": float(loss.detach()),
        "weight_mean_negative": _masked_mean(weights, negative),
    }


def value_loss(
    values: Tensor,
    returns: Tensor,
    old_values: Tensor | None = None,
    clip: float | None = None,
) -> tuple[Tensor, Metrics]:
    """``0.5 * mean((V - R)^2)``, optionally clipped around the old values as in PPO.

    With ``clip``, ``V_clipped = old + clamp(V - old, -clip, clip)`` and the loss
    is the elementwise maximum of both squared errors (the pessimistic choice).

    Args:
        values: any shape, the current predictions.
        returns: same shape, the targets.
        old_values: same shape, predictions when the data was collected
            (required when ``clip`` is given).
        clip: clip range, ``> 0``, or ``None`` for the plain loss.

    Returns:
        ``(loss, {"loss/value", "explained_variance"})``.
    """
    _checks.tensor("values", values)
    _checks.tensor("returns", returns)
    _checks.same_shape("returns", returns, "values", values)
    _checks.finite("returns", returns)
    returns = returns.detach()
    err = (values - returns).pow(2)
    if clip is not None:
        _checks.positive("clip", clip)
        if old_values is None:
            raise ValueError("old_values is required when clip is given")
        _checks.same_shape("old_values", old_values, "values", values)
        old = old_values.detach()
        clipped = old + torch.clamp(values - old, -clip, clip)
        err = torch.maximum(err, (clipped - returns).pow(2))
    loss = 0.5 * err.mean()
    return loss, {
        "loss/value": float(loss.detach()),
        "explained_variance": explained_variance(values.detach(), returns),
    }


def entropy_loss(logits: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Metrics]:
    """Negative mean entropy of categorical distributions (minimise it to explore).

    Args:
        logits: ``(..., A)`` unnormalised log-probabilities; ``-inf`` marks
            masked actions, which contribute nothing.
        mask: shape ``logits.shape[:-1]``, 1 for entries to average over.

    Returns:
        ``(-H, {"entropy": H})``.
    """
    _checks.tensor("logits", logits)
    logp = torch.log_softmax(logits, dim=-1)
    # Masked actions have logp = -inf; zero them before the product so that
    # neither the value nor the gradient sees 0 * inf.
    finite_logp = torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))
    ent = -(logp.exp() * finite_logp).sum(dim=-1)
    if mask is None:
        mean = ent.mean()
    else:
        m = _checks.as_float_mask("mask", mask, "entropy", ent)
        mean = (ent * m).sum() / m.sum().clamp_min(1.0)
    return -mean, {"entropy": float(mean.detach())}


def _kl_k1(log_ratio: Tensor) -> Tensor:
    return -log_ratio


def _kl_k2(log_ratio: Tensor) -> Tensor:
    return 0.5 * log_ratio.pow(2)


def _kl_k3(log_ratio: Tensor) -> Tensor:
    return torch.expm1(log_ratio) - log_ratio


KL_ESTIMATORS: dict[str, Callable[[Tensor], Tensor]] = {
    "k1": _kl_k1,  # unbiased, high variance, can be negative
    "k2": _kl_k2,  # biased, low variance, >= 0
    "k3": _kl_k3,  # unbiased and >= 0 (Schulman's "approximating KL")
}
"""Per-sample estimators of ``KL(pi || ref)`` from samples of ``pi``, as functions
of ``log(ref / pi)``."""


def kl_penalty(
    logp: Tensor,
    ref_logp: Tensor,
    estimator: str = "k3",
    mask: Tensor | None = None,
    aggregation: str = "token_mean",
    max_len: int | None = None,
) -> tuple[Tensor, Metrics]:
    """Estimate ``KL(pi || ref)`` on samples drawn from ``pi``.

    Args:
        logp: ``(B,)`` or ``(B, L)`` log-probabilities under the trained policy.
        ref_logp: same shape, under the reference policy (treated as constant).
        estimator: ``"k1"``, ``"k2"`` or ``"k3"`` (:data:`KL_ESTIMATORS`).
        mask, aggregation, max_len: as in :func:`reinforce_loss`.

    Returns:
        ``(kl, {"kl": kl})``; add ``coef * kl`` to the loss.
    """
    try:
        fn = KL_ESTIMATORS[estimator]
    except KeyError:
        raise ValueError(
            f"estimator must be one of {sorted(KL_ESTIMATORS)}, got {estimator!r}"
        ) from None
    _checks.tensor("ref_logp", ref_logp)
    _checks.same_shape("ref_logp", ref_logp, "logp", logp)
    seq, _, m = _prepare(logp, torch.zeros(logp.shape[0], device=logp.device), mask)
    ref = ref_logp.detach().reshape(seq.shape).to(seq.dtype)
    kl = aggregate(fn(ref - seq), m, aggregation, max_len)
    return kl, {"kl": float(kl.detach())}
