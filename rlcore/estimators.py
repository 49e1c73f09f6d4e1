"""Returns, advantages, group baselines and sample filters: pure tensor functions.

Conventions shared by every function here:

* Time-major rollouts: ``rewards``, ``values`` and ``dones`` have shape ``(T, N)``
  (``T`` steps of ``N`` parallel environments) or ``(T,)`` for one environment.
  ``dones[t] = 1`` marks that the episode ended *at* step ``t`` (after reward
  ``rewards[t]``); nothing is bootstrapped across it.
* Truncated episodes (a time limit, not a terminal state) are the caller's job,
  as in stable-baselines3: on the truncated step add ``gamma * V(final_obs)``
  to the reward and mark the step done. The functions then treat the value of
  the cut-off future exactly.
* Group tensors for ``k`` samples of the same instance or prompt have shape
  ``(B, k)``. Higher reward is better; for costs pass ``-cost``.

Functions never modify their inputs.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from rlcore import _checks

__all__ = [
    "batch_norm",
    "beta_normalized",
    "discounted_returns",
    "explained_variance",
    "gae",
    "group_mean",
    "group_norm",
    "leader_reward",
    "leave_one_out",
    "nstep_returns",
    "positive_only",
    "reject_uniform_groups",
    "sign_weights",
]


def _rollout(
    rewards: Tensor, dones: Tensor, gamma: float, ndim: tuple[int, ...] | None = (1, 2)
) -> tuple[Tensor, Tensor, float]:
    _checks.tensor("rewards", rewards, ndim=ndim)
    _checks.finite("rewards", rewards)
    if not rewards.is_floating_point():
        raise TypeError(f"rewards must be a floating tensor, got {rewards.dtype}")
    not_done = 1.0 - _checks.as_float_mask("dones", dones, "rewards", rewards)
    return rewards, not_done, _checks.unit_interval("gamma", gamma)


def _bootstrap(name: str, value: Tensor | None, rewards: Tensor) -> Tensor:
    if value is None:
        return rewards.new_zeros(rewards.shape[1:])
    _checks.tensor(name, value)
    value = value.to(rewards.dtype)
    if value.shape != rewards.shape[1:]:
        raise ValueError(
            f"{name} must have shape {tuple(rewards.shape[1:])} (one value per environment), "
            f"got {tuple(value.shape)}"
        )
    return _checks.finite(name, value)


def discounted_returns(
    rewards: Tensor, dones: Tensor, gamma: float, last_value: Tensor | None = None
) -> Tensor:
    """Discounted return ``G[t] = r[t] + gamma * (1 - done[t]) * G[t+1]``.

    Args:
        rewards: ``(T, N)`` or ``(T,)`` float rewards.
        dones: same shape, 1/True where the episode ended at step ``t``.
        gamma: discount in ``[0, 1]``.
        last_value: ``(N,)`` (or scalar for 1-D input) value of the observation
            after the last step, bootstrapped where the last step is not done;
            ``None`` means 0 (complete episodes).

    Returns:
        ``(T, N)`` returns, same dtype as ``rewards``.
    """
    _checks.tensor("rewards", rewards, ndim=(1, 2))
    last = _bootstrap("last_value", last_value, rewards)
    # With V = 0 and lambda = 1, GAE's advantage is exactly the discounted return.
    advantages, _ = gae(rewards, torch.zeros_like(rewards), dones, last, gamma, 1.0)
    return advantages


def gae(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor,
    last_value: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016).

    ``delta[t] = r[t] + gamma * (1 - done[t]) * V[t+1] - V[t]`` and
    ``A[t] = delta[t] + gamma * lam * (1 - done[t]) * A[t+1]``, where
    ``V[T] = last_value``. For a time-limit truncation, add
    ``gamma * V(final_obs)`` to the reward of the truncated step and mark it
    done (see the module docstring).

    On the CPU (float32/float64) one compiled pass computes and checks
    everything; elsewhere it runs as torch ops on the tensors' device.

    Args:
        rewards: ``(T, N)`` or ``(T,)`` float rewards.
        values: same shape, ``V(s_t)`` of the observation the action was taken in.
        dones: same shape, 1/True where the episode ended at step ``t``.
        last_value: ``(N,)`` (or scalar for 1-D input), ``V`` of the observation
            after the last step.
        gamma: discount in ``[0, 1]``.
        lam: GAE lambda in ``[0, 1]`` (0: one-step TD, 1: Monte-Carlo minus V).

    Returns:
        ``(advantages, returns)``, both shaped like ``rewards``;
        ``returns = advantages + values`` (the value-function target). Inputs
        are treated as constants: the outputs carry no gradient.
    """
    _checks.tensor("rewards", rewards, ndim=(1, 2))
    if not rewards.is_floating_point():
        raise TypeError(f"rewards must be a floating tensor, got {rewards.dtype}")
    gamma = _checks.unit_interval("gamma", gamma)
    lam = _checks.unit_interval("lam", lam)
    _checks.tensor("values", values)
    _checks.same_shape("values", values, "rewards", rewards)
    _checks.tensor("dones", dones)
    _checks.same_shape("dones", dones, "rewards", rewards)
    if last_value is None:
        raise ValueError("last_value is required for gae (use zeros if every episode ended)")
    last = _bootstrap("last_value", last_value, rewards)
    if rewards.device.type == "cpu" and rewards.dtype in (torch.float32, torch.float64):
        return _gae_cpu(rewards, values.to(rewards.dtype), dones, last, gamma, lam)
    return _gae_torch(rewards, values.to(rewards.dtype), dones, last, gamma, lam)


@torch.no_grad()
def _gae_torch(
    rewards: Tensor, values: Tensor, dones: Tensor, last: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    _checks.finite("rewards", rewards)
    _checks.finite("values", values)
    not_done = 1.0 - _checks.as_float_mask("dones", dones, "rewards", rewards)
    next_values = torch.cat((values[1:], last.unsqueeze(0)), dim=0)
    deltas = rewards + gamma * next_values * not_done - values
    coef = (gamma * lam) * not_done
    advantages = torch.empty_like(deltas)
    acc = torch.zeros_like(last)
    for t in range(deltas.shape[0] - 1, -1, -1):
        torch.addcmul(deltas[t], coef[t], acc, out=advantages[t])
        acc = advantages[t]
    return advantages, advantages + values


_GAE_ERRORS = {
    1: "rewards contains NaN or inf",
    2: "values contains NaN or inf",
    3: "dones must hold only 0/1 (or booleans)",
}


def _gae_cpu(
    rewards: Tensor, values: Tensor, dones: Tensor, last: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    def as_2d(x: Tensor) -> np.ndarray:
        a = np.ascontiguousarray(x.detach().numpy())
        return a.reshape(a.shape[0], -1)

    r, v, d = as_2d(rewards), as_2d(values), as_2d(dones)
    adv, ret = np.empty_like(r), np.empty_like(r)
    # Scalars in the arrays' dtype, so float32 data is computed in float32 in
    # the same order as NumPy/SB3 would (gamma * lam is formed in float64 first).
    kind = r.dtype.type
    status = _gae_kernel(
        r, v, d, last.detach().numpy().reshape(-1).astype(r.dtype), kind(gamma),
        kind(gamma * lam), kind(0.0), kind(1.0), adv, ret,
    )
    if status:
        raise ValueError(_GAE_ERRORS[status])
    shape = rewards.shape
    return torch.from_numpy(adv).reshape(shape), torch.from_numpy(ret).reshape(shape)


@numba.njit(cache=True, nogil=True)
def _gae_kernel(rewards, values, dones, last_value, gamma, gamma_lam, zero, one, adv, ret):
    """Fused GAE pass over ``(T, N)`` arrays; returns an error code (0: ok)."""
    n_steps, n_envs = rewards.shape
    next_value = last_value.copy()
    acc = np.zeros_like(last_value)
    for t in range(n_steps - 1, -1, -1):
        for j in range(n_envs):
            r = rewards[t, j]
            v = values[t, j]
            d = dones[t, j]
            if not np.isfinite(r):
                return 1
            if not np.isfinite(v):
                return 2
            if d == 0:
                not_done = one
            elif d == 1:
                not_done = zero
            else:
                return 3
            delta = r + gamma * next_value[j] * not_done - v
            a = delta + gamma_lam * not_done * acc[j]
            acc[j] = a
            adv[t, j] = a
            ret[t, j] = a + v
            next_value[j] = v
    return 0


def nstep_returns(
    rewards: Tensor,
    dones: Tensor,
    gamma: float,
    n: int,
    truncated: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Truncated n-step returns for replay-based agents.

    For every start ``t`` the window runs ``m`` steps, where ``m`` is ``n``, or
    fewer when the episode ends inside the window (the ending step included) or
    the data runs out. With ``G = sum_{j<m} gamma^j r[t+j]`` the learning target
    is ``G + discount * Q(s_{t+m})``.

    Args:
        rewards: ``(T, ...)`` float rewards in time order.
        dones: same shape, 1/True where an episode ended at that step, either by
            termination or by truncation.
        gamma: discount in ``[0, 1]``.
        n: number of steps, ``>= 1``.
        truncated: same shape, 1/True where the ending was a time limit: the
            window stops there but still bootstraps. ``None``: every done is a
            termination.

    Returns:
        ``(returns, discounts, steps)`` shaped like ``rewards``: ``discounts`` is
        ``gamma^m`` or 0 when the window ended in a termination; ``steps`` is
        ``m`` (int64): bootstrap from the observation that follows step ``t+m-1``.
    """
    _checks.tensor("rewards", rewards)
    if rewards.dim() == 0:
        raise ValueError("rewards must have a time dimension, got a scalar")
    gamma = _checks.unit_interval("gamma", gamma)
    n = _checks.integer("n", n, minimum=1)
    _checks.tensor("dones", dones)
    _checks.same_shape("dones", dones, "rewards", rewards)
    if truncated is not None:
        _checks.tensor("truncated", truncated)
        _checks.same_shape("truncated", truncated, "rewards", rewards)
    if rewards.device.type == "cpu" and rewards.dtype in (torch.float32, torch.float64):
        return _nstep_cpu(rewards, dones, gamma, n, truncated)
    return _nstep_torch(rewards, dones, gamma, n, truncated)


def _nstep_torch(
    rewards: Tensor, dones: Tensor, gamma: float, n: int, truncated: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    rewards, not_done, gamma = _rollout(rewards, dones, gamma, ndim=None)
    done = 1.0 - not_done
    if truncated is None:
        terminal_step = done
    else:
        trunc = _checks.as_float_mask("truncated", truncated, "rewards", rewards)
        if bool((trunc > done).any()):
            raise ValueError(_NSTEP_ERRORS[4])
        terminal_step = done - trunc
    length = rewards.shape[0]
    returns = torch.zeros_like(rewards)
    steps = torch.zeros_like(rewards)
    terminated = torch.zeros_like(rewards)
    running = torch.ones_like(rewards)
    for j in range(min(n, length)):
        rows = length - j
        run = running[:rows]
        returns[:rows] += (gamma**j) * rewards[j:] * run
        steps[:rows] += run
        terminated[:rows] += run * terminal_step[j:]
        running[:rows] = run * not_done[j:]
    discounts = torch.pow(torch.full_like(steps, gamma), steps) * (1.0 - terminated)
    return returns, discounts, steps.long()


_NSTEP_ERRORS = {
    1: "rewards contains NaN or inf",
    2: "dones must hold only 0/1 (or booleans)",
    3: "truncated must hold only 0/1 (or booleans)",
    4: "truncated marks a step that dones does not mark as ended",
}


def _nstep_cpu(
    rewards: Tensor, dones: Tensor, gamma: float, n: int, truncated: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """One compiled pass: replay buffers call this for every minibatch, so the
    per-call overhead of many small torch ops would dominate."""
    shape = rewards.shape
    r = np.ascontiguousarray(rewards.detach().numpy()).reshape(shape[0], -1)
    d = np.ascontiguousarray(dones.detach().numpy()).reshape(shape[0], -1)
    tr = d if truncated is None else np.ascontiguousarray(truncated.detach().numpy()).reshape(
        shape[0], -1)
    returns, discounts = np.empty_like(r), np.empty_like(r)
    steps = np.empty(r.shape, dtype=np.int64)
    kind = r.dtype.type
    status = _nstep_kernel(r, d, tr, truncated is not None, kind(gamma), n, kind(0.0),
                           kind(1.0), returns, discounts, steps)
    if status:
        raise ValueError(_NSTEP_ERRORS[status])
    return (torch.from_numpy(returns).reshape(shape), torch.from_numpy(discounts).reshape(shape),
            torch.from_numpy(steps).reshape(shape))


@numba.njit(cache=True, nogil=True)
def _nstep_kernel(rewards, dones, truncated, has_truncated, gamma, n, zero, one, returns,
                  discounts, steps):
    """n-step windows over ``(T, M)`` arrays; returns an error code (0: ok)."""
    n_steps, width = rewards.shape
    for t in range(n_steps):
        for j in range(width):
            if not np.isfinite(rewards[t, j]):
                return 1
            if dones[t, j] != 0 and dones[t, j] != 1:
                return 2
            if has_truncated:
                if truncated[t, j] != 0 and truncated[t, j] != 1:
                    return 3
                if truncated[t, j] != 0 and dones[t, j] == 0:
                    return 4
    for t in range(n_steps):
        for j in range(width):
            total = zero
            discount = one
            m = 0
            terminated = False
            for k in range(n):
                if t + k >= n_steps:
                    break
                total += discount * rewards[t + k, j]
                discount *= gamma
                m += 1
                if dones[t + k, j] != 0:
                    terminated = not (has_truncated and truncated[t + k, j] != 0)
                    break
            returns[t, j] = total
            discounts[t, j] = zero if terminated else discount
            steps[t, j] = m
    return 0


def _groups(rewards: Tensor, min_k: int = 1) -> Tensor:
    _checks.tensor("rewards", rewards, ndim=2)
    _checks.finite("rewards", rewards)
    if not rewards.is_floating_point():
        rewards = rewards.float()
    if rewards.shape[1] < min_k:
        raise ValueError(
            f"rewards must have at least {min_k} samples per group (shape (B, k), k >= {min_k}), "
            f"got k = {rewards.shape[1]}"
        )
    return rewards


def group_mean(rewards: Tensor) -> Tensor:
    """``r - mean(r)`` within each group: POMO's shared baseline, Dr. GRPO.

    The group mean includes the sample itself, so the expected gradient is
    scaled by ``(k - 1) / k``; multiply by ``k / (k - 1)`` (which gives
    :func:`leave_one_out`) for an unbiased estimate.

    Args:
        rewards: ``(B, k)`` rewards of ``k`` samples for each of ``B`` instances.

    Returns:
        ``(B, k)`` advantages.
    """
    rewards = _groups(rewards)
    return rewards - rewards.mean(dim=1, keepdim=True)


def group_norm(rewards: Tensor, eps: float = 1e-6) -> Tensor:
    """``(r - mean) / (std + eps)`` within each group (GRPO, Shao et al. 2024).

    ``std`` is the unbiased sample standard deviation, as in the GRPO reference
    implementations; groups whose rewards are all equal get advantage 0.

    Args:
        rewards: ``(B, k)`` rewards, ``k >= 2``.
        eps: added to the standard deviation.

    Returns:
        ``(B, k)`` advantages.
    """
    rewards = _groups(rewards, min_k=2)
    _checks.positive("eps", eps)
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True)
    return (rewards - mean) / (std + eps)


def leave_one_out(rewards: Tensor) -> Tensor:
    """``r_i - mean_{j != i} r_j`` (RLOO, Ahmadian et al. 2024; LOOP).

    An unbiased baseline: it does not depend on the sample it is subtracted from.

    Args:
        rewards: ``(B, k)`` rewards, ``k >= 2``.

    Returns:
        ``(B, k)`` advantages.
    """
    rewards = _groups(rewards, min_k=2)
    k = rewards.shape[1]
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)
    return rewards - others


def leader_reward(advantages: Tensor, alpha: float) -> Tensor:
    """The best sample's advantage times ``alpha``, after Leader Reward (Wang et al. 2024).

    Multi-start solvers are judged by their best solution, not their mean one;
    scaling the advantage of each group's leader (its highest advantage, which
    is the highest reward under :func:`group_mean` or :func:`leave_one_out`)
    pushes probability mass toward it. ``alpha = 1`` changes nothing. Ties
    count the first leader only.

    Args:
        advantages: ``(B, k)`` advantages of ``k`` samples for each of ``B`` instances.
        alpha: factor ``>= 1`` for each group's leader.

    Returns:
        ``(B, k)`` advantages.
    """
    advantages = _groups(advantages)
    if not alpha >= 1.0:
        raise ValueError(f"alpha must be >= 1, got {alpha}")
    leader = advantages.argmax(dim=1, keepdim=True)
    scale = torch.ones_like(advantages).scatter_(1, leader, alpha)
    return advantages * scale


def beta_normalized(rewards: Tensor, eps: float = 1e-6, max_abs: float = 10.0) -> Tensor:
    """Beta-normalised advantages (BNPO, Xiao et al. 2025).

    Each group's success rate ``p`` is its mean reward (rewards in ``[0, 1]``,
    typically 0/1). A Beta(a, b) is fitted by moments to the ``B`` success rates
    of the batch; with ``alpha = max(1 + a/3, 1)`` and ``beta = max(1 + b/3, 1)``
    the advantage is ``(r - p) / BetaPDF(p; alpha, beta)``. When the success
    rates have no spread the fit is undefined and ``alpha = beta = 1`` (a flat
    density, so ``A = r - p``).

    Args:
        rewards: ``(B, k)`` rewards in ``[0, 1]``.
        eps: lower clamp of the density, and of ``p`` away from 0 and 1.
        max_abs: advantages are clamped to ``[-max_abs, max_abs]``.

    Returns:
        ``(B, k)`` advantages.
    """
    rewards = _groups(rewards)
    _checks.positive("eps", eps)
    _checks.positive("max_abs", max_abs)
    if bool(((rewards < 0) | (rewards > 1)).any()):
        raise ValueError("rewards must lie in [0, 1] for beta_normalized (success indicators)")
    p = rewards.mean(dim=1, keepdim=True)
    m = p.mean()
    v = p.var(correction=0)
    spread = m * (1 - m)
    if float(v) > eps and float(spread) > eps:
        common = torch.clamp(spread / v - 1.0, min=0.0)
        a, b = m * common, (1.0 - m) * common
    else:
        a = b = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    alpha = torch.clamp(1.0 + a / 3.0, min=1.0)
    beta = torch.clamp(1.0 + b / 3.0, min=1.0)
    pc = p.clamp(eps, 1.0 - eps)
    log_pdf = (
        (alpha - 1.0) * torch.log(pc)
        + (beta - 1.0) * torch.log1p(-pc)
        + torch.lgamma(alpha + beta)
        - torch.lgamma(alpha)
        - torch.lgamma(beta)
    )
    density = torch.exp(log_pdf).clamp_min(eps)
    return ((rewards - p) / density).clamp(-max_abs, max_abs)


def batch_norm(rewards: Tensor, eps: float = 1e-8) -> Tensor:
    """Whiten over the whole batch: ``(r - mean) / (std + eps)`` (REINFORCE++).

    Uses the population standard deviation over every element, the usual
    whitening of the REINFORCE++ reference code.

    Args:
        rewards: any shape with at least 2 elements.
        eps: added to the standard deviation.

    Returns:
        Advantages of ``rewards``' shape.
    """
    _checks.tensor("rewards", rewards)
    _checks.finite("rewards", rewards)
    _checks.positive("eps", eps)
    if rewards.numel() < 2:
        raise ValueError(f"rewards must have at least 2 elements to whiten, got {rewards.numel()}")
    rewards = rewards if rewards.is_floating_point() else rewards.float()
    return (rewards - rewards.mean()) / (rewards.std(correction=0) + eps)


def reject_uniform_groups(rewards: Tensor) -> Tensor:
    """Which groups to keep under Reinforce-Rej (Xiong et al. 2025).

    A group whose rewards are all equal (all right, all wrong, or any constant)
    carries no learning signal under a group baseline and is dropped.

    Args:
        rewards: ``(B, k)`` rewards.

    Returns:
        ``(B,)`` bool, True for groups to keep.
    """
    rewards = _groups(rewards)
    return rewards.amax(dim=1) != rewards.amin(dim=1)


def positive_only(rewards: Tensor, threshold: float = 0.0) -> Tensor:
    """Which samples to keep under RAFT / RAFT++ (Dong et al. 2023; Xiong et al. 2025).

    Args:
        rewards: ``(B, k)`` rewards.
        threshold: samples with reward strictly above it are kept.

    Returns:
        ``(B, k)`` bool, True for samples to train on.
    """
    return _groups(rewards) > threshold


def sign_weights(
    rewards: Tensor,
    positive_weight: float = 1.0,
    negative_weight: float = 1.0,
    threshold: float = 0.0,
) -> Tensor:
    """Signed sample weights: PSR, NSR and W-REINFORCE (Zhu et al. 2025).

    A sample is positive when its reward is above ``threshold``. Positives get
    ``+positive_weight``, the rest ``-negative_weight``: PSR is (1, 0), NSR is
    (0, 1), W-REINFORCE is (lambda, 1) with lambda = 0.1 in the paper.

    Args:
        rewards: ``(B, k)`` rewards.
        positive_weight: weight ``>= 0`` of positive samples.
        negative_weight: weight ``>= 0`` of negative samples.
        threshold: the boundary between positive and negative rewards.

    Returns:
        ``(B, k)`` advantages.
    """
    rewards = _groups(rewards)
    _checks.positive("positive_weight", positive_weight, allow_zero=True)
    _checks.positive("negative_weight", negative_weight, allow_zero=True)
    positive = rewards > threshold
    return torch.where(positive, positive_weight, -negative_weight).to(rewards.dtype)


def explained_variance(predicted: Tensor, target: Tensor) -> float:
    """``1 - Var(target - predicted) / Var(target)``; NaN when the target is constant.

    1 is a perfect value function, 0 no better than a constant, below 0 worse.
    """
    _checks.tensor("predicted", predicted)
    _checks.tensor("target", target)
    _checks.same_shape("predicted", predicted, "target", target)
    var = target.var(correction=0)
    if float(var) == 0.0:
        return float("nan")
    return float(1.0 - (target - predicted).var(correction=0) / var)
