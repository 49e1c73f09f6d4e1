"""Policy, value, entropy and KL losses against gradients and values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from rlcore.losses import (
    all_action_loss,
    entropy_loss,
    kl_penalty,
    ppo_clip_loss,
    reinforce_loss,
    topr_loss,
    value_loss,
)

F64 = torch.float64


def t(x, grad: bool = False) -> torch.Tensor:
    return torch.tensor(x, dtype=F64, requires_grad=grad)


def grad_of(loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, x)
    return g


# ---------------------------------------------------------------------------
# PPO clip
# ---------------------------------------------------------------------------
def test_ppo_ratio_one_matches_reinforce_token_mean() -> None:
    gen = torch.Generator().manual_seed(0)
    logp = (-torch.rand(2, 3, generator=gen, dtype=F64)).requires_grad_()
    adv = t([1.5, -0.5])
    mask = t([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    loss, metrics = ppo_clip_loss(logp, logp.detach().clone(), adv, mask)
    g_ppo = grad_of(loss, logp)
    ref_loss, _ = reinforce_loss(logp, adv, mask, aggregation="token_mean")
    g_ref = grad_of(ref_loss, logp)
    # by hand: d/dlogp = -A_b * mask / (3 valid tokens)
    expected = t([[-0.5, -0.5, 0.0], [1.0 / 6.0, 0.0, 0.0]])
    assert_close(g_ppo, expected)
    assert_close(g_ref, expected)
    assert metrics["clip_fraction"] == 0.0
    assert metrics["approx_kl"] == 0.0
    assert metrics["ratio_mean"] == pytest.approx(1.0)


def test_ppo_clipped_entries_have_zero_gradient() -> None:
    # old_logp = 0, eps = .2, so the unclipped band is [.8, 1.2]
    #   e0: ratio 1.5, A=+1 -> clipped, grad 0, per-entry loss -1.2
    #   e1: ratio 0.5, A=-1 -> clipped, grad 0, loss -min(-.5, -.8) = .8
    #   e2: ratio 1.5, A=-1 -> not clipped (pessimistic), grad -r*A/5 = .3, loss 1.5
    #   e3: ratio 0.5, A=+1 -> not clipped, grad -.5/5 = -.1, loss -.5
    #   e4: ratio 1.1, A=+1 -> inside, grad -1.1/5 = -.22, loss -1.1
    ratios = [1.5, 0.5, 1.5, 0.5, 1.1]
    logp = t([math.log(x) for x in ratios], grad=True)
    adv = t([1.0, -1.0, -1.0, 1.0, 1.0])
    loss, metrics = ppo_clip_loss(logp, torch.zeros(5, dtype=F64), adv, eps_low=0.2)
    assert loss.item() == pytest.approx((-1.2 + 0.8 + 1.5 - 0.5 - 1.1) / 5)
    assert_close(grad_of(loss, logp), t([0.0, 0.0, 0.3, -0.1, -0.22]))
    # four of five ratios lie outside [.8, 1.2]
    assert metrics["clip_fraction"] == pytest.approx(0.8)
    # k3 = (r - 1) - log r, averaged
    kl = sum((x - 1) - math.log(x) for x in ratios) / 5
    assert metrics["approx_kl"] == pytest.approx(kl)
    assert metrics["ratio_mean"] == pytest.approx(sum(ratios) / 5)


def test_ppo_asymmetric_clip() -> None:
    # ratio 1.25 with A > 0: clipped at eps_high = .2, free at eps_high = .28 (DAPO)
    # ratio 0.75 with A < 0: below 1 - eps_low = .8, clipped in both cases
    logp = t([math.log(1.25), math.log(0.75)], grad=True)
    old = torch.zeros(2, dtype=F64)
    adv = t([1.0, -1.0])
    sym, m_sym = ppo_clip_loss(logp, old, adv, eps_low=0.2)
    assert_close(grad_of(sym, logp), t([0.0, 0.0]))
    assert m_sym["clip_fraction"] == 1.0
    asym, m_asym = ppo_clip_loss(logp, old, adv, eps_low=0.2, eps_high=0.28)
    # e0: grad -r*A/2 = -.625 ; e1 still clipped
    assert_close(grad_of(asym, logp), t([-0.625, 0.0]))
    assert m_asym["clip_fraction"] == 0.5


def test_ppo_mask_excludes_entries() -> None:
    # the masked entry has a huge ratio; it gets no gradient and is not counted anywhere
    logp = t([[0.0, math.log(3.0), 0.0]], grad=True)
    adv = t([[1.0, -2.0, -1.0]])
    mask = t([[1.0, 0.0, 1.0]])
    loss, metrics = ppo_clip_loss(logp, torch.zeros(1, 3, dtype=F64), adv, mask)
    # valid: e0 ratio 1, A=1 -> -1 ; e2 ratio 1, A=-1 -> +1 ; mean over 2 tokens = 0
    assert loss.item() == pytest.approx(0.0)
    assert_close(grad_of(loss, logp), t([[-0.5, 0.0, 0.5]]))
    assert metrics["clip_fraction"] == 0.0
    assert metrics["approx_kl"] == 0.0


def test_ppo_rejects_bad_arguments() -> None:
    logp = torch.zeros(3)
    with pytest.raises(ValueError, match="old_logp"):
        ppo_clip_loss(logp, torch.zeros(4), torch.ones(3))
    with pytest.raises(ValueError, match="eps_low"):
        ppo_clip_loss(logp, logp, torch.ones(3), eps_low=0.0)
    with pytest.raises(ValueError, match="advantages"):
        ppo_clip_loss(logp, logp, torch.ones(2))
    with pytest.raises(ValueError, match="mask"):
        ppo_clip_loss(logp, logp, torch.ones(3), mask=torch.ones(2))


# ---------------------------------------------------------------------------
# REINFORCE aggregations
# ---------------------------------------------------------------------------
# logp (2, 3), A = (2, -1), mask [[1, 1, 0], [1, 1, 1]]
# per-entry -A * logp = [[2, 4, 6], [-.5, -1, -1.5]]; masked: [[2, 4, 0], [-.5, -1, -1.5]]
AGG_LOGP = [[-1.0, -2.0, -3.0], [-0.5, -1.0, -1.5]]
AGG_ADV = [2.0, -1.0]
AGG_MASK = [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]


@pytest.mark.parametrize(
    ("aggregation", "max_len", "value", "grad"),
    [
        # per sequence 6/2 = 3 and -3/3 = -1, mean 1 ; grad -A/(len_b * 2)
        ("seq_mean_token_mean", None, 1.0, [[-0.5, -0.5, 0.0], [1 / 6, 1 / 6, 1 / 6]]),
        # (6 - 3) / 5 tokens ; grad -A/5
        ("token_mean", None, 0.6, [[-0.4, -0.4, 0.0], [0.2, 0.2, 0.2]]),
        # 3 / (2 * 4) ; grad -A/8
        ("seq_sum_norm", 4, 0.375, [[-0.25, -0.25, 0.0], [0.125, 0.125, 0.125]]),
        # 3 / 2 sequences ; grad -A/2
        ("seq_sum", None, 1.5, [[-1.0, -1.0, 0.0], [0.5, 0.5, 0.5]]),
    ],
)
def test_reinforce_aggregations(aggregation, max_len, value, grad) -> None:
    logp = t(AGG_LOGP, grad=True)
    loss, metrics = reinforce_loss(logp, t(AGG_ADV), t(AGG_MASK), aggregation, max_len)
    assert loss.item() == pytest.approx(value)
    assert metrics["loss/policy"] == pytest.approx(value)
    assert_close(grad_of(loss, logp), t(grad))
    # mean advantage over valid tokens: (2*2 - 1*3) / 5
    assert metrics["advantage_mean"] == pytest.approx(0.2)


def test_reinforce_per_token_advantages() -> None:
    # advantages of logp's shape; token_mean over 5 valid tokens
    logp = t(AGG_LOGP, grad=True)
    adv = t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    loss, _ = reinforce_loss(logp, adv, t(AGG_MASK), "token_mean")
    # -(1*-1 + 2*-2 + 4*-.5 + 5*-1 + 6*-1.5) / 5 = 21 / 5
    assert loss.item() == pytest.approx(4.2)
    assert_close(grad_of(loss, logp), -adv * t(AGG_MASK) / 5)


def test_seq_mean_token_mean_skips_empty_sequences() -> None:
    # the second sequence is fully masked: the mean is over the first only (3)
    logp = t(AGG_LOGP, grad=True)
    mask = t([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    loss, _ = reinforce_loss(logp, t(AGG_ADV), mask, "seq_mean_token_mean")
    assert loss.item() == pytest.approx(3.0)


def test_reinforce_one_dimensional_logp_default_seq_sum() -> None:
    # (B,) logp, default aggregation: mean over the batch of -A * logp
    logp = t([-1.0, -2.0], grad=True)
    loss, _ = reinforce_loss(logp, t([3.0, 1.0]))
    assert loss.item() == pytest.approx((3.0 + 2.0) / 2)
    assert_close(grad_of(loss, logp), t([-1.5, -0.5]))


def test_advantages_are_constants() -> None:
    logp = t([-1.0, -2.0], grad=True)
    adv = t([3.0, 1.0], grad=True)
    loss, _ = reinforce_loss(logp, adv)
    loss.backward()
    assert adv.grad is None


def test_seq_sum_norm_requires_max_len() -> None:
    with pytest.raises(ValueError, match="max_len"):
        reinforce_loss(t(AGG_LOGP), t(AGG_ADV), t(AGG_MASK), "seq_sum_norm")


def test_unknown_aggregation_lists_names() -> None:
    with pytest.raises(ValueError, match="aggregation") as info:
        reinforce_loss(t(AGG_LOGP), t(AGG_ADV), aggregation="mean")
    for name in ("seq_mean_token_mean", "token_mean", "seq_sum_norm", "seq_sum"):
        assert name in str(info.value)


# ---------------------------------------------------------------------------
# TOPR
# ---------------------------------------------------------------------------
def test_topr_weights() -> None:
    # old = 0: ratios (2, .5, 2, .5), A = (1, 1, -1, -1)
    # weights: positives 1 ; negatives clip(ratio, 0, 1) = (1, .5)
    # grad = -w * A / 4 = (-.25, -.25, .25, .125)
    logp = t([math.log(2.0), math.log(0.5), math.log(2.0), math.log(0.5)], grad=True)
    adv = t([1.0, 1.0, -1.0, -1.0])
    loss, metrics = topr_loss(logp, torch.zeros(4, dtype=F64), adv)
    assert_close(grad_of(loss, logp), t([-0.25, -0.25, 0.25, 0.125]))
    assert metrics["weight_mean_negative"] == pytest.approx(0.75)
    # loss = -(log2 + log.5 - log2 - .5*log.5) / 4 = -.5*log(.5)/4
    assert loss.item() == pytest.approx(-0.5 * math.log(0.5) / 4)


# ---------------------------------------------------------------------------
# value loss
# ---------------------------------------------------------------------------
def test_value_loss_plain() -> None:
    # V = (1, 2, 3), R = (1, 0, 5): squared errors (0, 4, 4) -> .5 * 8/3 ; grad (V - R)/3
    v = t([1.0, 2.0, 3.0], grad=True)
    loss, metrics = value_loss(v, t([1.0, 0.0, 5.0]))
    assert loss.item() == pytest.approx(4.0 / 3.0)
    assert_close(grad_of(loss, v), t([0.0, 2.0 / 3.0, -2.0 / 3.0]))
    # residual (0, -2, 2): var 8/3 ; target var 14/3 -> 1 - 8/14 = 3/7
    assert metrics["explained_variance"] == pytest.approx(3.0 / 7.0)


def test_value_loss_clipped() -> None:
    # old = 1, clip = .5: V_clipped = (1, 1.5, 1.5)
    # clipped sq errors (0, 2.25, 12.25), unclipped (0, 4, 4), max (0, 4, 12.25)
    # loss .5 * 16.25 / 3 ; grad: e1 unclipped term -> (2 - 0)/3 ; e2 clipped term is flat -> 0
    v = t([1.0, 2.0, 3.0], grad=True)
    loss, _ = value_loss(v, t([1.0, 0.0, 5.0]), old_values=t([1.0, 1.0, 1.0]), clip=0.5)
    assert loss.item() == pytest.approx(0.5 * 16.25 / 3)
    assert_close(grad_of(loss, v), t([0.0, 2.0 / 3.0, 0.0]))


def test_value_loss_clip_needs_old_values() -> None:
    with pytest.raises(ValueError, match="old_values"):
        value_loss(torch.zeros(3), torch.zeros(3), clip=0.2)
    with pytest.raises(ValueError, match="returns"):
        value_loss(torch.zeros(3), torch.zeros(4))


def test_explained_variance_constant_target_is_nan() -> None:
    _, metrics = value_loss(t([1.0, 2.0]), t([3.0, 3.0]))
    assert math.isnan(metrics["explained_variance"])
    _, metrics = value_loss(t([1.0, 2.0, 4.0]), t([1.0, 2.0, 4.0]))
    assert metrics["explained_variance"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# entropy
# ---------------------------------------------------------------------------
def test_entropy_uniform() -> None:
    loss, metrics = entropy_loss(torch.zeros(4, 5, dtype=F64))
    assert loss.item() == pytest.approx(-math.log(5.0))
    assert metrics["entropy"] == pytest.approx(math.log(5.0))


def test_entropy_by_hand() -> None:
    # logits (0, log 3): p = (.25, .75), H = -(.25 log .25 + .75 log .75)
    loss, _ = entropy_loss(t([0.0, math.log(3.0)]))
    assert -loss.item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_entropy_masked_actions_excluded() -> None:
    # two of five actions masked with -inf: uniform over 3 -> H = log 3
    logits = t([[0.0, -math.inf, 0.0, -math.inf, 0.0]] * 2)
    loss, _ = entropy_loss(logits)
    assert loss.item() == pytest.approx(-math.log(3.0))


def test_entropy_masked_actions_gradient_is_finite() -> None:
    # entropy is maximal at the uniform distribution over the 3 allowed actions, so
    # the gradient wrt the allowed logits is 0; -inf logits must not poison it with NaN
    logits = t([[0.0, -math.inf, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]], grad=True)
    loss, _ = entropy_loss(logits)
    g = grad_of(loss, logits)
    assert torch.isfinite(g).all(), g
    assert_close(g[0, [0, 2, 3]], torch.zeros(3, dtype=F64))


def test_entropy_row_mask() -> None:
    # rows: uniform over 2 (H = log 2) and uniform over 4 (H = log 4); only row 0 counts
    logits = t([[0.0, 0.0, -math.inf, -math.inf], [0.0, 0.0, 0.0, 0.0]])
    loss, _ = entropy_loss(logits, mask=t([1.0, 0.0]))
    assert loss.item() == pytest.approx(-math.log(2.0))


# ---------------------------------------------------------------------------
# KL penalty
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        # log(ref/pi) = (-.5, 1)
        ("k1", (0.5 - 1.0) / 2),  # -log(ref/pi)
        ("k2", (0.125 + 0.5) / 2),  # .5 * log(ref/pi)^2
        ("k3", ((math.exp(-0.5) - 1 + 0.5) + (math.e - 1 - 1)) / 2),  # ref/pi - 1 - log(ref/pi)
    ],
)
def test_kl_estimators_by_hand(estimator: str, expected: float) -> None:
    kl, metrics = kl_penalty(t([-1.0, -2.0]), t([-1.5, -1.0]), estimator)
    assert kl.item() == pytest.approx(expected)
    assert metrics["kl"] == pytest.approx(expected)


def test_kl_k3_is_nonnegative_and_zero_at_equality() -> None:
    gen = torch.Generator().manual_seed(1)
    logp = torch.randn(64, 7, generator=gen)
    ref = torch.randn(64, 7, generator=gen)
    per_token, _ = kl_penalty(logp, ref, "k3", aggregation="seq_sum")
    assert per_token.item() >= 0.0
    for i in range(8):
        kl, _ = kl_penalty(logp[i], ref[i], "k3")
        assert kl.item() >= 0.0
    kl, _ = kl_penalty(logp, logp.clone(), "k3")
    assert kl.item() == 0.0


def test_kl_gradient_does_not_flow_into_ref() -> None:
    logp = t([-1.0, -2.0], grad=True)
    ref = t([-1.5, -1.0], grad=True)
    kl, _ = kl_penalty(logp, ref, "k1")
    kl.backward()
    assert ref.grad is None
    assert_close(logp.grad, t([0.5, 0.5]))  # d/dlogp of mean(logp - ref)


def test_kl_unknown_estimator() -> None:
    with pytest.raises(ValueError, match="estimator"):
        kl_penalty(torch.zeros(2), torch.zeros(2), "k4")


def test_kl_monte_carlo_matches_exact() -> None:
    gen = torch.Generator().manual_seed(2)
    pi = torch.softmax(torch.tensor([0.5, -1.0, 1.2, 0.0, -0.3], dtype=F64), dim=0)
    ref = torch.softmax(torch.tensor([0.0, 0.4, 0.1, -0.8, 0.9], dtype=F64), dim=0)
    exact = float((pi * (pi.log() - ref.log())).sum())
    n = 200_000
    a = torch.multinomial(pi, n, replacement=True, generator=gen)
    logp, ref_logp = pi.log()[a], ref.log()[a]
    for estimator in ("k1", "k3"):
        kl, _ = kl_penalty(logp, ref_logp, estimator)
        per_sample = {
            "k1": logp - ref_logp,
            "k3": torch.exp(ref_logp - logp) - 1 - (ref_logp - logp),
        }[estimator]
        se = float(per_sample.std() / math.sqrt(n))
        assert abs(kl.item() - exact) < 4 * se, (estimator, kl.item(), exact, se)


def test_all_action_loss_is_the_exact_policy_gradient_of_the_choice() -> None:
    logits = t([[math.log(0.5), math.log(0.3), math.log(0.2)]], grad=True)
    adv = t([[1.0, -1.0, 2.0]])
    loss, metrics = all_action_loss(torch.log_softmax(logits, dim=-1), adv)
    # -(0.5 * 1 - 0.3 * 1 + 0.2 * 2) = -0.6
    assert_close(loss, t(-0.6))
    # d/dz_a = -pi_a (A_a - 0.6)
    expected = t([[-0.5 * 0.4, 0.3 * 1.6, -0.2 * 1.4]])
    assert_close(grad_of(loss, logits), expected)
    entropy = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))
    assert metrics["choice_entropy"] == pytest.approx(entropy)
    # the same shift of every advantage changes no gradient
    shifted, _ = all_action_loss(torch.log_softmax(logits, dim=-1), adv + 5.0)
    assert_close(grad_of(shifted, logits), expected)


def test_all_action_loss_renormalises_over_the_candidates_and_checks_input() -> None:
    # two of four actions evaluated: pi over them is 0.2 / (0.2 + 0.6) and 0.6 / 0.8
    logp = t([[math.log(0.2), math.log(0.6)]])
    loss, _ = all_action_loss(logp, t([[4.0, 0.0]]))
    assert_close(loss, t(-1.0))
    with pytest.raises(ValueError, match="advantages must have the shape"):
        all_action_loss(logp, t([4.0, 0.0]))
    with pytest.raises(ValueError, match="logp contains NaN or inf"):
        all_action_loss(t([[0.0, -math.inf]]), t([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="logp must have 2 dimensions"):
        all_action_loss(t([0.0, 0.0]), t([1.0, 0.0]))
