"""Returns, advantages and group estimators against numbers computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch.testing import assert_close

from rlcore.estimators import (
    batch_norm,
    beta_normalized,
    discounted_returns,
    gae,
    group_mean,
    group_norm,
    leader_reward,
    leave_one_out,
    nstep_returns,
    positive_only,
    reject_uniform_groups,
    sign_weights,
)

F64 = torch.float64


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=F64)


# ---------------------------------------------------------------------------
# A (T=3, N=2) rollout used by several tests; gamma = lam = 0.5.
#   env 0: r = [1, 2, 3], V = [0.5, 1, 2], done = [0, 1, 0], last V = 4
#   env 1: r = [0, 0, 1], V = [1, 1, 1],   done = [0, 0, 1], last V = 10 (unused)
# ---------------------------------------------------------------------------
REWARDS = t([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
VALUES = t([[0.5, 1.0], [1.0, 1.0], [2.0, 1.0]])
DONES = t([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
LAST = t([4.0, 10.0])


def test_gae_termination_mid_rollout() -> None:
    # env 0: delta2 = 3 + .5*4 - 2 = 3 ; delta1 = 2 - 1 = 1 (done: no bootstrap)
    #        delta0 = 1 + .5*1 - .5 = 1
    #        A2 = 3 ; A1 = 1 (nothing carried across the done) ; A0 = 1 + .25*1 = 1.25
    # env 1: delta2 = 1 - 1 = 0 (done: last V ignored) ; delta1 = 0 + .5 - 1 = -.5 ; delta0 = -.5
    #        A2 = 0 ; A1 = -.5 ; A0 = -.5 + .25*(-.5) = -.625
    adv, ret = gae(REWARDS, VALUES, DONES, LAST, gamma=0.5, lam=0.5)
    assert_close(adv, t([[1.25, -0.625], [1.0, -0.5], [3.0, 0.0]]))
    # returns = A + V
    assert_close(ret, t([[1.75, 0.375], [2.0, 0.5], [5.0, 1.0]]))


def test_discounted_returns_termination_and_bootstrap() -> None:
    # env 0: G2 = 3 + .5*4 = 5 ; G1 = 2 (done) ; G0 = 1 + .5*2 = 2
    # env 1: G2 = 1 (done, 10 ignored) ; G1 = .5 ; G0 = .25
    got = discounted_returns(REWARDS, DONES, gamma=0.5, last_value=LAST)
    assert_close(got, t([[2.0, 0.25], [2.0, 0.5], [5.0, 1.0]]))
    # no last_value: complete episodes, env 0's G2 = 3
    got = discounted_returns(REWARDS, DONES, gamma=0.5)
    assert_close(got, t([[2.0, 0.25], [2.0, 0.5], [3.0, 1.0]]))


def test_gae_truncation_matches_bootstrapped_continuation() -> None:
    # Steps 0, 1 of an episode cut by a time limit after step 1 (V(final_obs) = 7),
    # then step 2 of a new episode. Convention: r[1] += gamma * 7 and done[1] = 1.
    gamma, lam, v_final = 0.9, 0.8, 7.0
    r = t([1.0, 2.0, 5.0])
    v = t([3.0, 4.0, 6.0])
    r_trunc = r.clone()
    r_trunc[1] += gamma * v_final
    adv, _ = gae(r_trunc, v, t([0.0, 1.0, 0.0]), t(2.0), gamma, lam)
    # The first two steps must equal a rollout that simply stopped after step 1 and
    # bootstrapped from V(final_obs) -- the un-truncated continuation of the episode.
    cont, _ = gae(r[:2], v[:2], t([0.0, 0.0]), t(v_final), gamma, lam)
    assert_close(adv[:2], cont)
    # by hand: A1 = 2 + .9*7 - 4 = 4.3 ; A0 = 1 + .9*4 - 3 + .72*4.3 = 4.696
    assert_close(adv[:2], t([4.696, 4.3]))
    # step 2 belongs to the next episode: A2 = 5 + .9*2 - 6 = 0.8
    assert_close(adv[2], t(0.8))


def test_gae_truncation_with_exact_critic_gives_zero_advantage() -> None:
    # Reward 1 forever, gamma = .9: the exact value is 1 / (1 - .9) = 10 everywhere.
    # A time limit after step 1 must not change that: every advantage is 0.
    gamma = 0.9
    r = t([1.0, 1.0 + gamma * 10.0, 1.0, 1.0])
    v = torch.full((4,), 10.0, dtype=F64)
    adv, ret = gae(r, v, t([0.0, 1.0, 0.0, 0.0]), t(10.0), gamma, lam=0.95)
    assert_close(adv, torch.zeros(4, dtype=F64))
    assert_close(ret, v)
    assert_close(discounted_returns(r, t([0.0, 1.0, 0.0, 0.0]), gamma, t(10.0)), v)


@pytest.mark.parametrize("c", [0.0, 2.0, -3.0])
def test_gae_constant_critic_closed_form(c: float) -> None:
    # Rewards 1, V = c everywhere, last V = c, no dones (SB3's test_gae setting).
    T, N, gamma = 5, 3, 0.9
    r = torch.ones(T, N, dtype=F64)
    v = torch.full((T, N), c, dtype=F64)
    dones = torch.zeros(T, N, dtype=F64)
    last = torch.full((N,), c, dtype=F64)
    # lam = 1: A_t = G_t - c with G_t = (1 - g^(T-t)) / (1 - g) + g^(T-t) * c
    steps_left = torch.arange(T, 0, -1, dtype=F64).unsqueeze(1).expand(T, N)
    g_pow = gamma**steps_left
    expected = (1 - g_pow) / (1 - gamma) + g_pow * c - c
    adv, ret = gae(r, v, dones, last, gamma, lam=1.0)
    assert_close(adv, expected)
    assert_close(ret, expected + c)
    assert_close(discounted_returns(r, dones, gamma, last) - c, expected)
    # lam = 0: one-step TD, A = 1 + g*c - c at every step
    adv0, _ = gae(r, v, dones, last, gamma, lam=0.0)
    assert_close(adv0, torch.full((T, N), 1 + gamma * c - c, dtype=F64))


def test_gae_last_value_bootstrap() -> None:
    # T = 2, no dones, V = 0, gamma = .5, lam = 1, last V per env = (5, -2):
    # env 0: A1 = 1 + .5*5 = 3.5 ; A0 = 1 + .5*3.5 = 2.75
    # env 1: A1 = 1 - 1 = 0      ; A0 = 1 + 0 = 1
    r = torch.ones(2, 2, dtype=F64)
    z = torch.zeros(2, 2, dtype=F64)
    adv, _ = gae(r, z, z, t([5.0, -2.0]), gamma=0.5, lam=1.0)
    assert_close(adv, t([[2.75, 1.0], [3.5, 0.0]]))
    # gamma = 1, lam = 1: plain undiscounted sum of the rest plus the bootstrap, minus V
    adv, _ = gae(r, z, z, t([5.0, -2.0]), gamma=1.0, lam=1.0)
    assert_close(adv, t([[7.0, 0.0], [6.0, -1.0]]))


def test_one_dimensional_input() -> None:
    # env 0 of the (T, N) rollout as a (T,) rollout with a scalar last value
    adv, ret = gae(REWARDS[:, 0], VALUES[:, 0], DONES[:, 0], t(4.0), gamma=0.5, lam=0.5)
    assert adv.shape == (3,)
    assert_close(adv, t([1.25, 1.0, 3.0]))
    assert_close(ret, t([1.75, 2.0, 5.0]))
    g = discounted_returns(REWARDS[:, 0], DONES[:, 0], gamma=0.5, last_value=t(4.0))
    assert_close(g, t([2.0, 2.0, 5.0]))
    # boolean dones are accepted too
    g_bool = discounted_returns(REWARDS[:, 0], DONES[:, 0].bool(), 0.5, t(4.0))
    assert_close(g_bool, g)


def test_gae_returns_equal_advantages_plus_values() -> None:
    gen = torch.Generator().manual_seed(0)
    r = torch.randn(7, 4, generator=gen)
    v = torch.randn(7, 4, generator=gen)
    d = (torch.rand(7, 4, generator=gen) < 0.3).float()
    adv, ret = gae(r, v, d, torch.randn(4, generator=gen), 0.99, 0.95)
    assert adv.shape == ret.shape == (7, 4)
    assert adv.dtype == torch.float32
    assert_close(ret, adv + v)


def test_gae_lam1_equals_discounted_returns_minus_values() -> None:
    gen = torch.Generator().manual_seed(1)
    r = torch.randn(6, 3, generator=gen, dtype=F64)
    v = torch.randn(6, 3, generator=gen, dtype=F64)
    d = (torch.rand(6, 3, generator=gen) < 0.3).to(F64)
    last = torch.randn(3, generator=gen, dtype=F64)
    adv, _ = gae(r, v, d, last, 0.9, 1.0)
    assert_close(adv, discounted_returns(r, d, 0.9, last) - v)


# ---------------------------------------------------------------------------
# n-step returns
# ---------------------------------------------------------------------------
# rewards [1, 2, 3, 4, 5], gamma = .5, n = 3
NS_R = t([1.0, 2.0, 3.0, 4.0, 5.0])
NS_D = t([0.0, 1.0, 0.0, 0.0, 0.0])


def test_nstep_termination_and_end_of_data() -> None:
    ret, disc, steps = nstep_returns(NS_R, NS_D, gamma=0.5, n=3)
    # t=0: 1 + .5*2 = 2, episode terminated at t=1 -> m=2, discount 0
    # t=1: 2, m=1, discount 0
    # t=2: 3 + .5*4 + .25*5 = 6.25, m=3, discount .5^3 = .125
    # t=3: 4 + .5*5 = 6.5, data ends -> m=2, discount .25
    # t=4: 5, m=1, discount .5
    assert_close(ret, t([2.0, 2.0, 6.25, 6.5, 5.0]))
    assert_close(disc, t([0.0, 0.0, 0.125, 0.25, 0.5]))
    assert steps.dtype == torch.int64
    assert steps.tolist() == [2, 1, 3, 2, 1]


def test_nstep_truncation_bootstraps() -> None:
    # same ending at t=1, but it was a time limit: discount gamma^m instead of 0
    ret, disc, steps = nstep_returns(NS_R, NS_D, gamma=0.5, n=3, truncated=NS_D.clone())
    assert_close(ret, t([2.0, 2.0, 6.25, 6.5, 5.0]))
    assert_close(disc, t([0.25, 0.5, 0.125, 0.25, 0.5]))
    assert steps.tolist() == [2, 1, 3, 2, 1]


def test_nstep_two_dimensional() -> None:
    # column 1: done at t=3.
    # t=0: 1 + 1 + .75 = 2.75, m=3, disc .125 ; t=1: 2 + 1.5 + 1 = 4.5, ends at t=3 -> disc 0
    # t=2: 3 + 2 = 5, m=2, disc 0 ; t=3: 4, m=1, disc 0 ; t=4: 5, m=1, disc .5
    r = torch.stack([NS_R, NS_R], dim=1)
    d = torch.stack([NS_D, t([0.0, 0.0, 0.0, 1.0, 0.0])], dim=1)
    ret, disc, steps = nstep_returns(r, d, gamma=0.5, n=3)
    assert_close(ret[:, 1], t([2.75, 4.5, 5.0, 4.0, 5.0]))
    assert_close(disc[:, 1], t([0.125, 0.0, 0.0, 0.0, 0.5]))
    assert steps[:, 1].tolist() == [3, 3, 2, 1, 1]
    assert_close(ret[:, 0], t([2.0, 2.0, 6.25, 6.5, 5.0]))


def test_nstep_n1_is_one_step_td() -> None:
    ret, disc, steps = nstep_returns(NS_R, NS_D, gamma=0.9, n=1)
    assert_close(ret, NS_R)
    assert_close(disc, 0.9 * (1 - NS_D))
    assert steps.tolist() == [1] * 5


def test_nstep_n_larger_than_data() -> None:
    # n = 10 > T = 3, no dones: G0 = 1 + .5*2 + .25*3 = 2.75 (m=3, disc .125)
    ret, disc, steps = nstep_returns(t([1.0, 2.0, 3.0]), t([0.0, 0.0, 0.0]), 0.5, n=10)
    assert_close(ret, t([2.75, 3.5, 3.0]))
    assert_close(disc, t([0.125, 0.25, 0.5]))
    assert steps.tolist() == [3, 2, 1]


def test_nstep_truncated_must_be_done() -> None:
    with pytest.raises(ValueError, match="truncated"):
        nstep_returns(NS_R, NS_D, 0.5, 3, truncated=t([1.0, 0.0, 0.0, 0.0, 0.0]))


# ---------------------------------------------------------------------------
# group advantages, (B, k)
# ---------------------------------------------------------------------------
GROUPS = t([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])


def test_group_mean() -> None:
    # means 3 and 1
    assert_close(group_mean(GROUPS), t([[-2.0, -1.0, 3.0], [-1.0, -1.0, 2.0]]))


def test_leave_one_out() -> None:
    # g0: 1 - (2+6)/2 = -3 ; 2 - (1+6)/2 = -1.5 ; 6 - (1+2)/2 = 4.5
    # g1: 0 - 3/2 = -1.5 (twice) ; 3 - 0 = 3
    expected = t([[-3.0, -1.5, 4.5], [-1.5, -1.5, 3.0]])
    assert_close(leave_one_out(GROUPS), expected)
    k = GROUPS.shape[1]
    assert_close(group_mean(GROUPS) * k / (k - 1), expected)


def test_group_mean_times_k_over_k_minus_1_is_leave_one_out() -> None:
    gen = torch.Generator().manual_seed(2)
    r = torch.randn(5, 7, generator=gen, dtype=F64)
    assert_close(group_mean(r) * 7 / 6, leave_one_out(r))


def test_group_norm_unbiased_std() -> None:
    # g0 deviations (-2, -1, 3): sum sq 14, unbiased var 14/2 = 7
    # g1 deviations (-1, -1, 2): sum sq 6, unbiased var 3
    dev = t([[-2.0, -1.0, 3.0], [-1.0, -1.0, 2.0]])
    std = t([[math.sqrt(7.0)], [math.sqrt(3.0)]])
    assert_close(group_norm(GROUPS), dev / (std + 1e-6))
    assert_close(group_norm(GROUPS, eps=1.0), dev / (std + 1.0))
    # a group with equal rewards gets 0, not NaN
    assert_close(group_norm(t([[2.0, 2.0, 2.0]])), torch.zeros(1, 3, dtype=F64))


def test_batch_norm_population_std() -> None:
    # all six: mean 2, deviations (-1, 0, 4, -2, -2, 1), sum sq 26, population var 26/6
    dev = t([[-1.0, 0.0, 4.0], [-2.0, -2.0, 1.0]])
    std = math.sqrt(26.0 / 6.0)
    assert_close(batch_norm(GROUPS), dev / (std + 1e-8))
    assert_close(batch_norm(GROUPS, eps=0.5), dev / (std + 0.5))


def test_beta_normalized_moment_fit() -> None:
    # k = 4, success rates p = (.25, .25, .75)
    r = t([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    p = t([[0.25], [0.25], [0.75]])
    m = 5.0 / 12.0  # mean of p
    v = ((0.25 - m) ** 2 * 2 + (0.75 - m) ** 2) / 3  # population variance = 1/18
    assert v == pytest.approx(1.0 / 18.0)
    common = m * (1 - m) / v - 1  # = 35/144 * 18 - 1 = 3.375
    assert common == pytest.approx(3.375)
    a, b = m * common, (1 - m) * common  # 1.40625, 1.96875
    alpha, beta = max(1 + a / 3, 1.0), max(1 + b / 3, 1.0)  # 1.46875, 1.65625
    density = t(stats.beta.pdf(p.numpy(), alpha, beta))
    assert_close(beta_normalized(r), (r - p) / density)


def test_beta_normalized_no_spread_falls_back_to_r_minus_p() -> None:
    # every group has p = .5: the fit is undefined, alpha = beta = 1, A = r - p
    r = t([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert_close(beta_normalized(r), r - 0.5)
    # all zero: A = 0
    assert_close(beta_normalized(torch.zeros(3, 2, dtype=F64)), torch.zeros(3, 2, dtype=F64))


def test_beta_normalized_rejects_rewards_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="rewards"):
        beta_normalized(t([[2.0, 0.0], [1.0, 0.0]]))


def test_reject_uniform_groups() -> None:
    r = t([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.5]])
    assert reject_uniform_groups(r).tolist() == [False, True, False, True]


def test_leader_reward_scales_each_groups_best_advantage() -> None:
    a = t([[1.0, -2.0, 1.0], [0.5, -0.5, 0.0]])  # a tie: only the first leader counts
    assert_close(leader_reward(a, 3.0), t([[3.0, -2.0, 1.0], [1.5, -0.5, 0.0]]))
    assert_close(leader_reward(a, 1.0), a)


def test_leader_reward_of_costs_scales_the_cheapest_sample() -> None:
    cost = t([[4.0, 2.0, 3.0]])
    assert_close(leader_reward(group_mean(-cost), 2.0), t([[-1.0, 2.0, 0.0]]))


def test_leader_reward_rejects_alpha_below_one() -> None:
    with pytest.raises(ValueError, match="alpha"):
        leader_reward(t([[1.0, 0.0]]), 0.5)


def test_positive_only() -> None:
    r = t([[1.0, 0.0, -1.0], [0.5, 0.0, 2.0]])
    assert positive_only(r).tolist() == [[True, False, False], [True, False, True]]
    assert positive_only(r, threshold=0.5).tolist() == [[True, False, False], [False, False, True]]


@pytest.mark.parametrize(
    ("pos", "neg", "expected"),
    [
        (1.0, 0.0, [[1.0, 0.0], [0.0, 1.0]]),  # PSR: positives only
        (0.0, 1.0, [[0.0, -1.0], [-1.0, 0.0]]),  # NSR: negatives only
        (0.1, 1.0, [[0.1, -1.0], [-1.0, 0.1]]),  # W-REINFORCE, lambda = .1
    ],
)
def test_sign_weights(pos: float, neg: float, expected: list[list[float]]) -> None:
    r = t([[1.0, 0.0], [0.0, 1.0]])
    assert_close(sign_weights(r, positive_weight=pos, negative_weight=neg), t(expected))


def test_sign_weights_threshold() -> None:
    # reward 0.3 is above 0 but not above 0.5
    r = t([[0.3, 0.7]])
    assert_close(sign_weights(r, 1.0, 1.0, threshold=0.5), t([[-1.0, 1.0]]))


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
def test_shape_mismatches_name_the_argument() -> None:
    r = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="dones"):
        discounted_returns(r, torch.zeros(4, 3), 0.9)
    with pytest.raises(ValueError, match="dones"):
        gae(r, torch.zeros(4, 2), torch.zeros(3, 2), torch.zeros(2), 0.9, 0.9)
    with pytest.raises(ValueError, match="values"):
        gae(r, torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(2), 0.9, 0.9)
    with pytest.raises(ValueError, match="last_value"):
        gae(r, torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(3), 0.9, 0.9)
    with pytest.raises(ValueError, match="last_value"):
        discounted_returns(r, torch.zeros(4, 2), 0.9, last_value=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="dones"):
        nstep_returns(r, torch.zeros(5, 2), 0.9, 2)


def test_nan_rewards_rejected() -> None:
    r = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    z = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="rewards"):
        discounted_returns(r, z, 0.9)
    with pytest.raises(ValueError, match="rewards"):
        gae(r, z, z, torch.zeros(2), 0.9, 0.9)
    with pytest.raises(ValueError, match="rewards"):
        nstep_returns(r, z, 0.9, 2)
    with pytest.raises(ValueError, match="rewards"):
        group_mean(r)
    with pytest.raises(ValueError, match="rewards"):
        group_norm(r)
    with pytest.raises(ValueError, match="rewards"):
        leave_one_out(r)
    with pytest.raises(ValueError, match="rewards"):
        batch_norm(r)
    with pytest.raises(ValueError, match="values"):
        gae(torch.zeros(2, 2), r, z, torch.zeros(2), 0.9, 0.9)


@pytest.mark.parametrize("fn", [leave_one_out, group_norm])
def test_single_sample_groups_rejected(fn) -> None:
    with pytest.raises(ValueError, match="rewards"):
        fn(torch.ones(3, 1))


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_gamma_and_lam_outside_unit_interval(bad: float) -> None:
    r = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns(r, r, bad)
    with pytest.raises(ValueError, match="gamma"):
        gae(r, r, r, torch.zeros(2), bad, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        nstep_returns(r, r, bad, 2)
    with pytest.raises(ValueError, match="lam"):
        gae(r, r, r, torch.zeros(2), 0.9, bad)


def test_nstep_n_must_be_positive() -> None:
    r = torch.zeros(3)
    with pytest.raises(ValueError, match="n must"):
        nstep_returns(r, r, 0.9, 0)
    with pytest.raises(TypeError, match="n must"):
        nstep_returns(r, r, 0.9, 2.0)


def test_non_tensor_input_raises_type_error() -> None:
    with pytest.raises(TypeError, match="rewards"):
        discounted_returns([1.0, 2.0], torch.zeros(2), 0.9)
    with pytest.raises(TypeError, match="rewards"):
        group_mean([[1.0, 2.0]])
    with pytest.raises(TypeError, match="dones"):
        discounted_returns(torch.zeros(2), [0, 0], 0.9)
    with pytest.raises(TypeError, match="values"):
        gae(torch.zeros(2), [0.0, 0.0], torch.zeros(2), torch.zeros(()), 0.9, 0.9)
    with pytest.raises(TypeError, match="gamma"):
        discounted_returns(torch.zeros(2), torch.zeros(2), "0.9")


def test_non_binary_dones_rejected() -> None:
    with pytest.raises(ValueError, match="dones"):
        discounted_returns(torch.zeros(3), torch.tensor([0.0, 0.5, 1.0]), 0.9)


# ---------------------------------------------------------------------------
# purity
# ---------------------------------------------------------------------------
def test_inputs_not_modified() -> None:
    gen = torch.Generator().manual_seed(3)
    r = torch.rand(6, 3, generator=gen)
    v = torch.randn(6, 3, generator=gen)
    d = (torch.rand(6, 3, generator=gen) < 0.3).float()
    last = torch.randn(3, generator=gen)
    groups = (torch.rand(4, 3, generator=gen) < 0.5).float()
    originals = [x.clone() for x in (r, v, d, last, groups)]

    gae(r, v, d, last, 0.99, 0.95)
    discounted_returns(r, d, 0.99, last)
    nstep_returns(r, d, 0.99, 3, truncated=d)
    for fn in (
        group_mean,
        group_norm,
        leave_one_out,
        beta_normalized,
        batch_norm,
        reject_uniform_groups,
        positive_only,
        sign_weights,
        lambda g: leader_reward(g, 2.0),
    ):
        fn(groups)

    for x, x0 in zip((r, v, d, last, groups), originals, strict=True):
        assert torch.equal(x, x0)
