"""REINFORCE baselines for combinatorial problems, behind one narrow protocol.

Costs are minimised (tour lengths). A trainer asks the baseline for a value of
the same shape as the sampled costs and uses ``advantage = value - cost``::

    value, aux_loss = baseline.eval(batch, cost)
    loss, _ = reinforce_loss(logp, value - cost)
    (loss + aux_loss).backward()
    ...
    baseline.epoch_callback(policy, epoch)        # after every epoch

rlcore knows nothing about routing: the greedy-rollout baseline is handed two
functions, one that decodes a batch greedily and one that draws an evaluation
set from a seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from scipy import stats
from torch import Tensor, nn

from rlcore import _checks
from rlcore.estimators import group_mean

__all__ = [
    "Baseline",
    "CriticBaseline",
    "ExponentialBaseline",
    "GreedyRolloutBaseline",
    "NoBaseline",
    "SharedBaseline",
]


@runtime_checkable
class Baseline(Protocol):
    """What a trainer needs from a baseline."""

    def eval(self, batch: Any, cost: Tensor) -> tuple[Tensor, Tensor]:
        """``(value, aux_loss)``: ``value`` detached and shaped like ``cost``;
        ``aux_loss`` a scalar to add to the policy loss (0 unless it learns)."""
        ...

    def epoch_callback(self, policy: nn.Module, epoch: int) -> dict[str, float]:
        """Called after each epoch; returns metrics to log."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _check_cost(cost: Tensor) -> Tensor:
    _checks.tensor("cost", cost)
    return _checks.finite("cost", cost).detach()


class _Defaults:
    """No epoch update and no state: what most baselines need."""

    def epoch_callback(self, policy: nn.Module, epoch: int) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class NoBaseline(_Defaults):
    """Plain REINFORCE: the baseline is 0."""

    def eval(self, batch: Any, cost: Tensor) -> tuple[Tensor, Tensor]:
        cost = _check_cost(cost)
        return torch.zeros_like(cost), cost.new_zeros(())


class ExponentialBaseline(_Defaults):
    """Moving average of the batch-mean cost: ``v <- beta * v + (1 - beta) * mean(cost)``.

    The first batch sets ``v`` to its mean. ``beta = 0.8`` is the paper's warm-up.
    """

    def __init__(self, beta: float = 0.8) -> None:
        self.beta = _checks.unit_interval("beta", beta)
        self.value: Tensor | None = None

    def eval(self, batch: Any, cost: Tensor) -> tuple[Tensor, Tensor]:
        cost = _check_cost(cost)
        mean = cost.mean()
        self.value = mean if self.value is None else self.beta * self.value + (1 - self.beta) * mean
        return self.value.expand_as(cost), cost.new_zeros(())

    def state_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.beta = state["beta"]
        self.value = state["value"]


class CriticBaseline(_Defaults):
    """A value network trained by MSE on the sampled costs (an actor-critic baseline).

    ``critic(batch)`` must return one value per instance, shaped like ``cost``.
    Add :meth:`parameters` to the optimizer; ``aux_loss`` is the MSE.
    """

    def __init__(self, critic: nn.Module) -> None:
        if not isinstance(critic, nn.Module):
            raise TypeError(f"critic must be a torch.nn.Module, got {type(critic).__name__}")
        self.critic = critic

    def parameters(self):  # noqa: ANN201 - an iterator of nn.Parameter, as nn.Module's
        return self.critic.parameters()

    def eval(self, batch: Any, cost: Tensor) -> tuple[Tensor, Tensor]:
        cost = _check_cost(cost)
        value = self.critic(batch)
        if value.shape != cost.shape:
            value = value.reshape(cost.shape)
        return value.detach(), nn.functional.mse_loss(value, cost)

    def state_dict(self) -> dict[str, Any]:
        return {"critic": self.critic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic.load_state_dict(state["critic"])


class SharedBaseline(_Defaults):
    """POMO's shared baseline: the mean cost of the ``k`` rollouts of each instance.

    ``cost`` has shape ``(B, k)``; ``cost - value`` is exactly
    :func:`rlcore.estimators.group_mean` of the costs.
    """

    def eval(self, batch: Any, cost: Tensor) -> tuple[Tensor, Tensor]:
        cost = _check_cost(cost)
        _checks.tensor("cost", cost, ndim=2)
        return cost - group_mean(cost), cost.new_zeros(())


Data = Tensor | Mapping[str, Tensor]


def _chunks(data: Data, size: int) -> list[Data]:
    """Split a tensor, or a dict of tensors sharing their first dimension, into batches."""
    n = len(next(iter(data.values()))) if isinstance(data, Mapping) else len(data)
    out: list[Data] = []
    for i in range(0, n, size):
        if isinstance(data, Mapping):
            out.append({k: v[i : i + size] for k, v in data.items()})
        else:
            out.append(data[i : i + size])
    return out


class GreedyRolloutBaseline:
    """Greedy-rollout baseline (Kool et al. 2019).

    A frozen copy of the policy decodes each training batch greedily; its cost
    is the baseline. After every epoch the trained policy (the candidate) is
    compared with the frozen copy on a fixed evaluation set: it replaces the
    copy only if its mean cost is lower and a one-sided paired t-test gives
    ``p < alpha``; a fresh evaluation set is then drawn. For the first
    ``warmup_epochs`` epochs the exponential baseline is used instead, while
    the frozen copy is still the untrained policy.

    Args:
        policy: the policy being trained; it is copied, never modified.
        rollout: ``rollout(model, batch) -> (B,) costs`` decoding greedily; it is
            called under ``torch.no_grad()`` with ``model`` in eval mode.
        make_eval_set: ``make_eval_set(size, seed)`` returns a tensor, or a dict
            of tensors, of ``size`` instances; it must depend only on ``seed``
            (use a private generator, never the global RNG).
        eval_size: instances in the evaluation set (the paper: 10,000).
        batch_size: instances per greedy decode on the evaluation set.
        alpha: significance level of the t-test.
        warmup_epochs: epochs that use the exponential baseline.
        warmup_beta: its ``beta``.
        seed: seed of the first evaluation set; the i-th replacement uses ``seed + i``.
    """

    def __init__(
        self,
        policy: nn.Module,
        rollout: Callable[[nn.Module, Any], Tensor],
        make_eval_set: Callable[[int, int], Data],
        *,
        eval_size: int = 10_000,
        batch_size: int = 1024,
        alpha: float = 0.05,
        warmup_epochs: int = 1,
        warmup_beta: float = 0.8,
        seed: int = 0,
    ) -> None:
        if not isinstance(policy, nn.Module):
            raise TypeError(f"policy must be a torch.nn.Module, got {type(policy).__name__}")
        if not callable(rollout):
            raise TypeError("rollout must be callable: rollout(model, batch) -> costs")
        if not callable(make_eval_set):
            raise TypeError("make_eval_set must be callable: make_eval_set(size, seed) -> data")
        self.rollout_fn = rollout
        self.make_eval_set = make_eval_set
        self.eval_size = _checks.integer("eval_size", eval_size, minimum=2)
        self.batch_size = _checks.integer("batch_size", batch_size, minimum=1)
        self.alpha = _checks.unit_interval("alpha", alpha)
        self.warmup_epochs = _checks.integer("warmup_epochs", warmup_epochs, minimum=0)
        self.warmup = ExponentialBaseline(warmup_beta)
        self.seed = _checks.integer("seed", seed, minimum=0)
        self.epochs_done = 0
        self.replacements = 0
        self._set_model(policy)

    def _set_model(self, policy: nn.Module) -> None:
        self.model = copy.deepcopy(policy)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._new_eval_set()

    def _new_eval_set(self) -> None:
        self.eval_set = self.make_eval_set(self.eval_size, self.seed + self.replacements)
        self.eval_costs = self._costs(self.model, self.eval_set)

    @torch.no_grad()
    def _costs(self, model: nn.Module, data: Data) -> Tensor:
        was_training = model.training
        model.eval()
        costs = torch.cat([self.rollout_fn(model, b).reshape(-1) for b in _chunks(data, self.batch_size)])
        model.train(was_training)
        return costs.detach().double().cpu()

    def eval(self, batch: Any, cost: Tensor) -> tuple[Tensor, Tensor]:
        cost = _check_cost(cost)
        if self.epochs_done < self.warmup_epochs:
            return self.warmup.eval(batch, cost)
        with torch.no_grad():
            value = self.rollout_fn(self.model, batch)
        return value.detach().reshape(cost.shape).to(cost.dtype), cost.new_zeros(())

    def epoch_callback(self, policy: nn.Module, epoch: int) -> dict[str, float]:
        """Compare the trained policy with the frozen copy; replace it if significantly better."""
        candidate = self._costs(policy, self.eval_set)
        cand_mean = float(candidate.mean())
        base_mean = float(self.eval_costs.mean())
        p_value = 1.0
        if cand_mean < base_mean:
            p_value = float(
                stats.ttest_rel(candidate.numpy(), self.eval_costs.numpy(), alternative="less").pvalue
            )
        replaced = cand_mean < base_mean and p_value < self.alpha
        if replaced:
            self.replacements += 1
            self._set_model(policy)
        self.epochs_done = epoch + 1
        return {
            "baseline/candidate_cost": cand_mean,
            "baseline/baseline_cost": base_mean,
            "baseline/p_value": p_value,
            "baseline/replaced": float(replaced),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "seed": self.seed,
            "replacements": self.replacements,
            "epochs_done": self.epochs_done,
            "warmup": self.warmup.state_dict(),
            "eval_costs": self.eval_costs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.seed = state["seed"]
        self.replacements = state["replacements"]
        self.epochs_done = state["epochs_done"]
        self.warmup.load_state_dict(state["warmup"])
        self.eval_set = self.make_eval_set(self.eval_size, self.seed + self.replacements)
        self.eval_costs = state["eval_costs"]
