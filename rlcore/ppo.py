"""Proximal policy optimisation: actor-critic networks, advantages over reward streams, one update.

Every on-policy agent of the project (PPO, PPO with RND, safe exploration)
collects a rollout its own way and then calls the same two functions:

* :func:`stream_advantages` runs rlcore's :func:`~rlcore.estimators.gae` once
  per reward stream (extrinsic, intrinsic, cost, ...), each with its own
  discount and its own notion of episode end, and mixes the advantages with
  fixed coefficients (RND: ``2 * A_ext + 1 * A_int``).
* :func:`ppo_update` runs the epochs of minibatch updates over the flattened
  rollout with rlcore's :func:`~rlcore.losses.ppo_clip_loss`,
  :func:`~rlcore.losses.value_loss` and :func:`~rlcore.losses.entropy_loss`; an
  add-on trains its own networks on the same minibatches through ``aux_loss``.

An :class:`ActorCritic` has one value head per reward stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rlcore import _checks
from rlcore.config import option, require
from rlcore.estimators import explained_variance, gae
from rlcore.losses import entropy_loss, ppo_clip_loss, value_loss
from rlcore.networks import NatureCNN, layer_init, mlp

__all__ = ["ActorCritic", "PPOConfig", "ppo_update", "stream_advantages"]

AuxLoss = Callable[[dict[str, Tensor]], tuple[Tensor, dict[str, float]]]


class ActorCritic(nn.Module):
    """A categorical policy and ``value_heads`` value functions on a shared or separate trunk.

    ``forward(obs)`` returns ``(logits (B, A), values (B, value_heads))``. Build
    one with :meth:`nature_cnn` (Atari frames) or :meth:`mlp` (vector
    observations), or pass any trunks that map observations to ``features``.

    Args:
        trunk: maps a batch of observations to ``(B, features)``.
        features: width of the trunk's output.
        num_actions: number of discrete actions.
        value_heads: number of value functions (one per reward stream).
        value_trunk: a separate trunk for the values; ``None`` shares ``trunk``.
        compute_dtype: run the forward pass under ``torch.autocast`` in this dtype
            (``torch.bfloat16`` halves the CPU time of the Nature CNN where the CPU
            has bf16 instructions); weights, gradients and outputs stay float32.
            ``None``: plain float32.
        channels_last: keep conv weights and ``(B, C, H, W)`` inputs in channels-last
            memory order (same numbers; about 1.5x faster Nature CNN updates on CPU
            through oneDNN).
        value_gain: orthogonal-init gain of the value heads: 1 (CleanRL / SB3 PPO),
            or 0.01 (RND's code), which starts every value near 0 so a stream
            that has seen no reward yet adds no noise to the advantages.
    """

    def __init__(
        self, trunk: nn.Module, features: int, num_actions: int, value_heads: int = 1,
        value_trunk: nn.Module | None = None, compute_dtype: torch.dtype | None = None,
        channels_last: bool = False, value_gain: float = 1.0,
    ) -> None:
        super().__init__()
        if compute_dtype not in (None, torch.bfloat16, torch.float16):
            raise ValueError(f"compute_dtype must be None, torch.bfloat16 or torch.float16, got {compute_dtype}")
        self.compute_dtype = compute_dtype
        _checks.integer("features", features, minimum=1)
        _checks.integer("num_actions", num_actions, minimum=1)
        self.value_heads = _checks.integer("value_heads", value_heads, minimum=1)
        self.trunk = trunk
        self.value_trunk = value_trunk
        if not value_gain > 0:
            raise ValueError(f"value_gain must be > 0, got {value_gain}")
        # Small policy init (gain 0.01) starts near-uniform.
        self.policy_head = layer_init(nn.Linear(features, num_actions), gain=0.01)
        self.value_head = layer_init(nn.Linear(features, value_heads), gain=value_gain)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    @classmethod
    def nature_cnn(
        cls, in_channels: int, num_actions: int, value_heads: int = 1,
        compute_dtype: torch.dtype | None = None, value_gain: float = 1.0,
    ) -> ActorCritic:
        """Shared Nature CNN trunk (512 features) for ``(B, in_channels, 84, 84)`` frames."""
        return cls(NatureCNN(in_channels), 512, num_actions, value_heads,
                   compute_dtype=compute_dtype, channels_last=True, value_gain=value_gain)

    @classmethod
    def mlp(
        cls, obs_dim: int, num_actions: int, value_heads: int = 1,
        hidden: Sequence[int] = (64, 64), value_gain: float = 1.0,
    ) -> ActorCritic:
        """Separate tanh MLP trunks for policy and values (CleanRL's classic-control PPO)."""
        def trunk() -> nn.Sequential:
            return mlp(obs_dim, hidden, activation=nn.Tanh, orthogonal=True)

        return cls(trunk(), hidden[-1], num_actions, value_heads, value_trunk=trunk(),
                   value_gain=value_gain)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        if self.channels_last and obs.dim() == 4:
            obs = obs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(obs.device.type, self.compute_dtype or torch.bfloat16,
                            enabled=self.compute_dtype is not None):
            features = self.trunk(obs)
            value_features = features if self.value_trunk is None else self.value_trunk(obs)
            logits, values = self.policy_head(features), self.value_head(value_features)
        return logits.float(), values.float()


@dataclass(frozen=True, kw_only=True)
class PPOConfig:
    """Settings of one PPO update (defaults: CleanRL / SB3-zoo Atari PPO)."""

    epochs: int = option(4, "passes over the rollout per update")
    minibatches: int = option(4, "minibatches per epoch (the rollout is split evenly)")
    clip: float = option(0.1, "PPO clip range epsilon of the probability ratio")
    value_clip: float | None = option(None, "clip range of value updates around the old values; None: no clipping")
    ent_coef: float = option(0.01, "entropy bonus coefficient")
    vf_coef: float = option(0.5, "value loss coefficient")
    max_grad_norm: float = option(0.5, "clip the global gradient norm to this")
    normalize_advantages: bool = option(True, "standardise advantages within each minibatch")
    target_kl: float | None = option(None, "stop the epochs early once approx-KL exceeds this; None: never")

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "epochs", ">= 1", self.epochs)
        require(self.minibatches >= 1, "minibatches", ">= 1", self.minibatches)
        require(self.clip > 0, "clip", "> 0", self.clip)
        require(self.value_clip is None or self.value_clip > 0, "value_clip", "> 0 or None",
                self.value_clip)
        require(self.ent_coef >= 0, "ent_coef", ">= 0", self.ent_coef)
        require(self.vf_coef >= 0, "vf_coef", ">= 0", self.vf_coef)
        require(self.max_grad_norm > 0, "max_grad_norm", "> 0", self.max_grad_norm)
        require(self.target_kl is None or self.target_kl > 0, "target_kl", "> 0 or None",
                self.target_kl)


def stream_advantages(
    rewards: Sequence[Tensor],
    values: Tensor,
    dones: Sequence[Tensor | None],
    last_values: Tensor,
    gammas: Sequence[float],
    lam: float,
    coefs: Sequence[float],
) -> tuple[Tensor, Tensor]:
    """GAE for each of ``H`` reward streams, mixed into one advantage.

    Args:
        rewards: ``H`` tensors ``(T, N)``, one per stream.
        values: ``(T, N, H)``, the value heads' predictions.
        dones: ``H`` tensors ``(T, N)`` of episode ends for each stream; ``None``
            makes that stream non-episodic (RND's intrinsic stream).
        last_values: ``(N, H)``, the values of the observations after the last step.
        gammas: ``H`` discounts.
        lam: GAE lambda shared by the streams.
        coefs: ``H`` advantage coefficients.

    Returns:
        ``(advantages (T, N), returns (T, N, H))``: ``sum_h coefs[h] * A_h`` and the
        value targets of each head.
    """
    heads = len(rewards)
    _checks.tensor("values", values, ndim=3)
    for name, seq in (("dones", dones), ("gammas", gammas), ("coefs", coefs)):
        if len(seq) != heads:
            raise ValueError(f"{name} must have one entry per reward stream ({heads}), got {len(seq)}")
    if values.shape[2] != heads or last_values.shape != (values.shape[1], heads):
        raise ValueError(
            f"values must be (T, N, {heads}) and last_values (N, {heads}), got "
            f"{tuple(values.shape)} and {tuple(last_values.shape)}"
        )
    advantages, returns = torch.zeros_like(rewards[0]), []
    for h in range(heads):
        done = torch.zeros_like(rewards[h]) if dones[h] is None else dones[h]
        adv, ret = gae(rewards[h], values[..., h], done, last_values[:, h], gammas[h], lam)
        advantages = advantages + coefs[h] * adv
        returns.append(ret)
    return advantages, torch.stack(returns, dim=-1)


def ppo_update(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Mapping[str, Tensor],
    cfg: PPOConfig,
    aux_loss: AuxLoss | None = None,
    head_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """``cfg.epochs`` passes of clipped-surrogate minibatch updates over one rollout.

    Args:
        model: maps observations to ``(logits (B, A), values (B, H))``, e.g.
            :class:`ActorCritic`.
        optimizer: holds the model's parameters (and ``aux_loss``'s, if any).
        batch: the flattened rollout, ``B`` samples: ``obs (B, ...)``,
            ``actions (B,)``, ``logp (B,)`` (under the collecting policy),
            ``advantages (B,)``, ``returns (B, H)`` and ``values (B, H)`` (the
            old predictions); an add-on may put its own keys next to them.
        cfg: the update's settings.
        aux_loss: called with each minibatch (every key of ``batch``, sliced);
            returns ``(loss, metrics)`` added to the PPO loss (RND's predictor loss).
        head_names: ``H`` names for the per-head metrics; ``None``: ``0, 1, ...``.

    Returns:
        Metrics averaged over the minibatches: ``loss/policy``, ``loss/value``
        (the sum over heads; per head ``loss/value_<name>`` when ``H > 1``),
        ``loss/entropy`` (the entropy itself), ``train/approx_kl``,
        ``train/clip_fraction``, ``train/epochs``,
        ``train/explained_variance[_<name>]`` (old values against the targets),
        and ``aux_loss``'s metrics.
    """
    for key in ("obs", "actions", "logp", "advantages", "returns", "values"):
        if key not in batch:
            raise ValueError(f"batch must hold {key!r}, got keys {sorted(batch)}")
    size = batch["actions"].shape[0]
    returns, old_values = batch["returns"], batch["values"]
    if returns.dim() != 2 or returns.shape != old_values.shape or returns.shape[0] != size:
        raise ValueError(f"batch['returns'] and batch['values'] must be ({size}, H), got "
                         f"{tuple(returns.shape)} and {tuple(old_values.shape)}")
    if cfg.minibatches > size:
        raise ValueError(f"cfg.minibatches ({cfg.minibatches}) exceeds the batch size {size}")
    heads = returns.shape[1]
    names = [str(h) for h in range(heads)] if head_names is None else list(head_names)
    if len(names) != heads:
        raise ValueError(f"head_names must have {heads} entries, got {len(names)}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    sums: dict[str, float] = {}
    count, epochs_run = 0, 0
    for _ in range(cfg.epochs):
        epochs_run += 1
        epoch_kl = []
        for idx in torch.randperm(size).tensor_split(cfg.minibatches):
            mb = {k: v[idx] for k, v in batch.items()}
            logits, values = model(mb["obs"])
            logp = torch.log_softmax(logits, dim=-1).gather(1, mb["actions"][:, None]).squeeze(1)
            adv = mb["advantages"]
            if cfg.normalize_advantages and adv.numel() > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg_loss, metrics = ppo_clip_loss(logp, mb["logp"], adv, eps_low=cfg.clip)
            ent_loss, ent_metrics = entropy_loss(logits)
            loss = pg_loss + cfg.ent_coef * ent_loss
            stats = {"loss/policy": metrics["loss/policy"], "loss/entropy": ent_metrics["entropy"],
                     "train/approx_kl": metrics["approx_kl"],
                     "train/clip_fraction": metrics["clip_fraction"]}
            v_total = 0.0
            for h in range(heads):
                v_loss, _ = value_loss(values[:, h], mb["returns"][:, h], mb["values"][:, h],
                                       clip=cfg.value_clip)
                loss = loss + cfg.vf_coef * v_loss
                v_total += float(v_loss.detach())
                if heads > 1:
                    stats[f"loss/value_{names[h]}"] = float(v_loss.detach())
            stats["loss/value"] = v_total
            if aux_loss is not None:
                extra, extra_metrics = aux_loss(mb)
                loss = loss + extra
                stats.update(extra_metrics)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            epoch_kl.append(metrics["approx_kl"])
        if cfg.target_kl is not None and sum(epoch_kl) / len(epoch_kl) > cfg.target_kl:
            break
    out = {k: v / count for k, v in sums.items()}
    out["train/epochs"] = float(epochs_run)
    for h in range(heads):
        suffix = f"_{names[h]}" if heads > 1 else ""
        out[f"train/explained_variance{suffix}"] = explained_variance(old_values[:, h], returns[:, h])
    return out
