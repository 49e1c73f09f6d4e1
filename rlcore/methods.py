"""One table from a method's name to its parts: advantage, sample filter, loss, aggregation.

Group-based policy-gradient methods differ only in these four choices, so each
is a row of :data:`METHODS` rather than a branch of an if/elif chain. Rewards
come as ``(B, k)``: ``k`` samples of each of ``B`` prompts or instances.

>>> loss, metrics = method_loss("grpo", logp, old_logp, rewards, mask)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from rlcore import _checks, estimators, losses

__all__ = ["METHODS", "Method", "method_loss"]


def _given(rewards: Tensor) -> Tensor:
    """The rewards (or caller-computed advantages) are used as they are."""
    return rewards


def _ones(rewards: Tensor) -> Tensor:
    """Every kept sample gets weight 1: supervised fine-tuning on the kept set."""
    return torch.ones_like(rewards)


def _reinforce(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    *,
    mask: Tensor | None,
    aggregation: str,
    max_len: int | None,
) -> tuple[Tensor, dict[str, float]]:
    """:func:`rlcore.losses.reinforce_loss` with the common signature (``old_logp`` unused)."""
    return losses.reinforce_loss(logp, advantages, mask, aggregation, max_len)


@dataclass(frozen=True)
class Method:
    """The parts of one policy-gradient method."""

    advantage: Callable[[Tensor], Tensor]
    """``(B, k)`` rewards -> ``(B, k)`` advantages."""
    loss: Callable[..., tuple[Tensor, dict[str, float]]]
    """``(logp, old_logp, advantages, *, mask, aggregation, max_len) -> (loss, metrics)``."""
    keep: Callable[[Tensor], Tensor] | None
    """``(B, k)`` rewards -> bool ``(B,)`` (per group) or ``(B, k)`` (per sample); None keeps all."""
    aggregation: str
    """A key of :data:`rlcore.losses.AGGREGATIONS`."""
    reference: str
    """Where the method comes from."""


METHODS: dict[str, Method] = {
    "reinforce": Method(_given, _reinforce, None, "seq_sum", "Williams 1992"),
    "rloo": Method(
        estimators.leave_one_out, _reinforce, None, "seq_sum", "Ahmadian et al. 2024 (RLOO)"
    ),
    "grpo": Method(
        estimators.group_norm,
        losses.ppo_clip_loss,
        None,
        "seq_mean_token_mean",
        "Shao et al. 2024 (DeepSeekMath)",
    ),
    "dr_grpo": Method(
        estimators.group_mean,
        losses.ppo_clip_loss,
        None,
        "seq_sum_norm",
        "Liu et al. 2025 (Understanding R1-Zero-like training)",
    ),
    "raft": Method(
        _ones, _reinforce, estimators.positive_only, "token_mean", "Dong et al. 2023 (RAFT)"
    ),
    "raft++": Method(
        _ones,
        losses.ppo_clip_loss,
        estimators.positive_only,
        "token_mean",
        "Xiong et al. 2025 (A minimalist approach to LLM reasoning)",
    ),
    "reinforce_rej": Method(
        estimators.group_mean,
        losses.ppo_clip_loss,
        estimators.reject_uniform_groups,
        "token_mean",
        "Xiong et al. 2025 (A minimalist approach to LLM reasoning)",
    ),
    "topr": Method(
        _given, losses.topr_loss, None, "token_mean", "Le Roux et al. 2025 (TOPR)"
    ),
    "bnpo": Method(
        estimators.beta_normalized,
        losses.ppo_clip_loss,
        None,
        "token_mean",
        "Xiao et al. 2025 (BNPO)",
    ),
    "psr": Method(
        partial(estimators.sign_weights, positive_weight=1.0, negative_weight=0.0),
        _reinforce,
        None,
        "token_mean",
        "Zhu et al. 2025 (The surprising effectiveness of negative reinforcement)",
    ),
    "nsr": Method(
        partial(estimators.sign_weights, positive_weight=0.0, negative_weight=1.0),
        _reinforce,
        None,
        "token_mean",
        "Zhu et al. 2025 (The surprising effectiveness of negative reinforcement)",
    ),
    "w_reinforce": Method(
        partial(estimators.sign_weights, positive_weight=0.1, negative_weight=1.0),
        _reinforce,
        None,
        "token_mean",
        "Zhu et al. 2025 (The surprising effectiveness of negative reinforcement)",
    ),
    "ppo": Method(
        _given, losses.ppo_clip_loss, None, "token_mean", "Schulman et al. 2017 (PPO)"
    ),
    "loop": Method(
        estimators.leave_one_out,
        losses.ppo_clip_loss,
        None,
        "token_mean",
        "Chen et al. 2025 (LOOP)",
    ),
}
"""Method name -> :class:`Method`. For ``"reinforce"``, ``"ppo"`` and ``"topr"``
the ``rewards`` passed to :func:`method_loss` are used as advantages directly,
so a caller may pass GAE advantages or baselined returns there."""


def method_loss(
    name: str,
    logp: Tensor,
    old_logp: Tensor | None,
    rewards: Tensor,
    mask: Tensor | None = None,
    max_len: int | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The loss of the named method on one batch of groups.

    Args:
        name: a key of :data:`METHODS`.
        logp: ``(B * k,)`` or ``(B * k, L)`` log-probabilities, group-major
            (the ``k`` samples of group 0 first).
        old_logp: same shape, under the sampling policy; ``None`` means
            on-policy (``logp`` detached).
        rewards: ``(B, k)`` rewards.
        mask: shape of ``logp``, 1 for valid tokens.
        max_len: the fixed length for the ``"seq_sum_norm"`` aggregation.

    Returns:
        ``(loss, metrics)``; metrics add ``kept_fraction``.
    """
    try:
        method = METHODS[name]
    except KeyError:
        raise ValueError(f"name must be one of {sorted(METHODS)}, got {name!r}") from None
    _checks.tensor("rewards", rewards, ndim=2)
    _checks.tensor("logp", logp, ndim=(1, 2))
    if logp.shape[0] != rewards.numel():
        raise ValueError(
            f"logp must have B * k = {rewards.numel()} rows for rewards of shape "
            f"{tuple(rewards.shape)}, got {logp.shape[0]}"
        )
    advantages = method.advantage(rewards).reshape(-1)
    keep = torch.ones(rewards.numel(), dtype=logp.dtype, device=logp.device)
    if method.keep is not None:
        kept = method.keep(rewards)
        keep = kept.unsqueeze(1).expand_as(rewards) if kept.dim() == 1 else kept
        keep = keep.reshape(-1).to(logp.dtype)
    if mask is None:
        full_mask = torch.ones_like(logp)
    else:
        full_mask = _checks.as_float_mask("mask", mask, "logp", logp).to(logp.dtype)
    full_mask = full_mask * (keep.unsqueeze(1) if logp.dim() == 2 else keep)
    old = logp.detach() if old_logp is None else old_logp
    loss, metrics = method.loss(
        logp, old, advantages, mask=full_mask, aggregation=method.aggregation, max_len=max_len
    )
    metrics["kept_fraction"] = float(keep.mean())
    return loss, metrics
