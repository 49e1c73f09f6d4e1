"""Monte-Carlo check that the group baselines give unbiased policy gradients.

A softmax bandit with K = 4 arms and logits theta. With p = softmax(theta) and arm
means mu, the exact gradient of E[r] is

    d/dtheta_j  sum_i p_i mu_i = p_j (mu_j - sum_i p_i mu_i).

A sampled arm a with advantage A contributes (onehot(a) - p) * A (the gradient of
log p_a times A). The estimate of one group is the mean of its k contributions; over
many groups the mean must match the exact gradient within 4 standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from rlcore.baselines import ExponentialBaseline
from rlcore.estimators import group_mean, leave_one_out
from rlcore.losses import reinforce_loss
from rlcore.methods import method_loss

F64 = torch.float64
K_ARMS, GROUPS, K = 4, 20_000, 4
NOISE = 1.0
# +5 offset: without a baseline every sample pushes all arms up, which costs variance
MU = torch.tensor([0.0, 0.5, 1.0, 1.5], dtype=F64) + 5.0
# fixed logits: p ~ (.51, .31, .11, .07), exact gradient ~ (-.19, .04, .07, .08)
THETA = torch.tensor([1.0, 0.5, -0.5, -1.0], dtype=F64)


class Bandit:
    def __init__(self, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.theta = THETA.clone()
        self.p = torch.softmax(self.theta, dim=0)

    def sample(self, groups: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(arms, rewards)``, both ``(groups, k)``."""
        arms = torch.multinomial(
            self.p.expand(groups, K_ARMS), k, replacement=True, generator=self.gen
        )
        noise = NOISE * torch.randn(groups, k, generator=self.gen, dtype=F64)
        return arms, MU[arms] + noise

    def exact_gradient(self) -> torch.Tensor:
        return self.p * (MU - (self.p * MU).sum())

    def per_group(self, arms: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
        """``(groups, K_ARMS)``: each group's mean of (onehot(a) - p) * A."""
        score = torch.nn.functional.one_hot(arms, K_ARMS).to(F64) - self.p
        return (score * adv.unsqueeze(-1)).mean(dim=1)


def mean_and_se(per_group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return per_group.mean(dim=0), per_group.std(dim=0) / math.sqrt(per_group.shape[0])


def autograd_gradient(bandit: Bandit, arms: torch.Tensor, loss_fn) -> torch.Tensor:
    """Minus the gradient wrt theta of a library loss on the sampled log-probabilities."""
    theta = bandit.theta.clone().requires_grad_()
    logp = torch.log_softmax(theta, dim=0)[arms.reshape(-1)]
    loss = loss_fn(logp)
    (g,) = torch.autograd.grad(loss, theta)
    return -g


@pytest.fixture(scope="module")
def bandit_batch() -> tuple[Bandit, torch.Tensor, torch.Tensor, torch.Tensor]:
    bandit = Bandit(seed=0)
    # warm the exponential baseline up on earlier batches, then freeze it, so the
    # baseline used below does not depend on the samples it is subtracted from
    baseline = ExponentialBaseline(beta=0.8)
    for _ in range(20):
        _, r = bandit.sample(256, K)
        baseline.eval(None, -r)  # the baseline tracks costs; the cost is -reward
    frozen = baseline.value.detach().clone()
    arms, rewards = bandit.sample(GROUPS, K)
    return bandit, arms, rewards, frozen


def estimators(rewards: torch.Tensor, frozen: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "reinforce": rewards,
        # advantage = value - cost, with cost = -reward and a frozen value
        "exponential": frozen - (-rewards),
        "leave_one_out": leave_one_out(rewards),
        "group_mean_corrected": group_mean(rewards) * K / (K - 1),
    }


def test_exponential_baseline_tracks_mean_reward(bandit_batch) -> None:
    bandit, _, _, frozen = bandit_batch
    # value ~ E[cost] = -sum p mu (a loose check that the warm-up did its job)
    assert float(frozen) == pytest.approx(-float((bandit.p * MU).sum()), abs=0.3)


@pytest.mark.parametrize(
    "name", ["reinforce", "exponential", "leave_one_out", "group_mean_corrected"]
)
def test_estimator_is_unbiased(bandit_batch, name: str) -> None:
    bandit, arms, rewards, frozen = bandit_batch
    adv = estimators(rewards, frozen)[name]
    mean, se = mean_and_se(bandit.per_group(arms, adv))
    exact = bandit.exact_gradient()
    assert (exact.abs() > 0.03).all()  # a gradient worth estimating
    assert ((mean - exact).abs() < 4 * se).all(), (name, mean, exact, se)


def test_baselines_reduce_variance(bandit_batch) -> None:
    bandit, arms, rewards, frozen = bandit_batch
    total = {
        name: float(bandit.per_group(arms, adv).var(dim=0).sum())
        for name, adv in estimators(rewards, frozen).items()
    }
    for name in ("exponential", "leave_one_out", "group_mean_corrected"):
        assert total[name] < 0.5 * total["reinforce"], total


def test_uncorrected_group_mean_is_shrunk_by_k_minus_1_over_k(bandit_batch) -> None:
    bandit, arms, rewards, _ = bandit_batch
    mean, se = mean_and_se(bandit.per_group(arms, group_mean(rewards)))
    exact = bandit.exact_gradient()
    assert ((mean - (K - 1) / K * exact).abs() < 4 * se).all()
    # ... and the shrinkage is visible: far from the exact gradient somewhere
    assert ((mean - exact).abs() / se).max() > 8


def test_library_losses_compute_the_same_estimates(bandit_batch) -> None:
    # The autograd gradient of rlcore's losses on log p_a is minus the sample mean of
    # the analytic contributions: seq_sum over (B*k,) logp is a mean over samples.
    bandit, arms, rewards, _ = bandit_batch
    g_reinforce = autograd_gradient(
        bandit, arms, lambda logp: reinforce_loss(logp, rewards.reshape(-1))[0]
    )
    assert_close(g_reinforce, bandit.per_group(arms, rewards).mean(dim=0))
    g_rloo = autograd_gradient(
        bandit, arms, lambda logp: method_loss("rloo", logp, None, rewards)[0]
    )
    assert_close(g_rloo, bandit.per_group(arms, leave_one_out(rewards)).mean(dim=0))
