"""Every method of the table runs, and a few are checked against gradients by hand."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from rlcore.methods import METHODS, method_loss

F64 = torch.float64

# B = 3 groups of k = 4 samples, 0/1 rewards; group 1 is uniform (all correct).
REWARDS = torch.tensor(
    [[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]], dtype=F64
)
B, K, L = 3, 4, 5
# valid lengths of the 12 sequences (group-major)
LENGTHS = torch.tensor([5, 3, 1, 4, 2, 5, 5, 3, 4, 2, 1, 5])
MASK = (torch.arange(L).unsqueeze(0) < LENGTHS.unsqueeze(1)).to(F64)

EXPECTED_NAMES = {
    "reinforce",
    "rloo",
    "grpo",
    "dr_grpo",
    "raft",
    "raft++",
    "reinforce_rej",
    "topr",
    "bnpo",
    "psr",
    "nsr",
    "w_reinforce",
    "ppo",
    "loop",
}


def make_logp(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (-torch.rand(B * K, L, generator=gen, dtype=F64) - 0.1).requires_grad_()


def grad_of(loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, x)
    return g


def test_method_table_has_every_name() -> None:
    assert set(METHODS) == EXPECTED_NAMES


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
@pytest.mark.parametrize("off_policy", [False, True])
def test_every_method_gives_finite_scalar_and_gradient(name: str, off_policy: bool) -> None:
    logp = make_logp()
    old = None
    if off_policy:
        gen = torch.Generator().manual_seed(1)
        old = logp.detach() + 0.3 * torch.randn(B * K, L, generator=gen, dtype=F64)
    loss, metrics = method_loss(name, logp, old, REWARDS, MASK, max_len=L)
    assert loss.dim() == 0
    assert torch.isfinite(loss)
    g = grad_of(loss, logp)
    assert torch.isfinite(g).all()
    assert g.abs().sum() > 0
    # padding never gets gradient
    assert (g[MASK == 0] == 0).all()
    assert 0.0 < metrics["kept_fraction"] <= 1.0


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_every_method_accepts_one_logp_per_sample(name: str) -> None:
    logp = make_logp()[:, 0].detach().requires_grad_()
    loss, _ = method_loss(name, logp, None, REWARDS, max_len=1)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert torch.isfinite(grad_of(loss, logp)).all()


def test_rloo_gradient_by_hand() -> None:
    # leave-one-out advantages:
    #   g0 (1,0,0,1): 1 - 1/3 = 2/3 ; 0 - 2/3 = -2/3
    #   g1 all 1: 0
    #   g2 (0,1,0,0): 0 - 1/3 = -1/3 ; 1 - 0 = 1
    adv = torch.tensor(
        [2 / 3, -2 / 3, -2 / 3, 2 / 3, 0, 0, 0, 0, -1 / 3, 1, -1 / 3, -1 / 3], dtype=F64
    )
    logp = make_logp()
    loss, _ = method_loss("rloo", logp, None, REWARDS, MASK)
    # seq_sum: sum over tokens, mean over the B*k = 12 sequences -> grad -A * mask / 12
    assert_close(grad_of(loss, logp), -adv.unsqueeze(1) * MASK / 12)


def test_reinforce_uses_rewards_as_advantages() -> None:
    logp = make_logp()
    loss, _ = method_loss("reinforce", logp, None, REWARDS, MASK)
    assert_close(grad_of(loss, logp), -REWARDS.reshape(-1, 1) * MASK / 12)


def test_reinforce_rej_drops_uniform_groups() -> None:
    # group-mean advantages: g0 (.5, -.5, -.5, .5), g2 (-.25, .75, -.25, -.25); g1 rejected.
    # token_mean over the valid tokens of groups 0 and 2 only: 13 + 12 = 25 tokens
    adv = torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, -0.25, 0.75, -0.25, -0.25], dtype=F64)
    kept_tokens = int(LENGTHS[:4].sum() + LENGTHS[8:].sum())
    assert kept_tokens == 25
    logp = make_logp()
    loss, metrics = method_loss("reinforce_rej", logp, None, REWARDS, MASK)
    g = grad_of(loss, logp)
    assert (g[4:8] == 0).all()
    assert_close(g, -adv.unsqueeze(1) * MASK / 25)
    assert metrics["kept_fraction"] == pytest.approx(2 / 3)


def test_raft_trains_on_positive_rows_only() -> None:
    # positive rows: 0, 3, 4, 5, 6, 7, 9 ; advantage 1 ; token_mean over their tokens
    positive = REWARDS.reshape(-1) > 0
    tokens = int(LENGTHS[positive].sum())
    assert tokens == 5 + 4 + 2 + 5 + 5 + 3 + 2
    logp = make_logp()
    loss, metrics = method_loss("raft", logp, None, REWARDS, MASK)
    g = grad_of(loss, logp)
    assert (g[~positive] == 0).all()
    assert_close(g, -positive.to(F64).unsqueeze(1) * MASK / tokens)
    assert metrics["kept_fraction"] == pytest.approx(7 / 12)


def test_grpo_gradient_by_hand() -> None:
    # group_norm (unbiased std): g0 mean .5, std sqrt(1/3) -> +-.5*sqrt(3)
    # g1 uniform -> 0 ; g2 mean .25, std .5 -> (-.5, 1.5, -.5, -.5)
    s = 0.5 * 3**0.5
    adv = torch.tensor([s, -s, -s, s, 0, 0, 0, 0, -0.5, 1.5, -0.5, -0.5], dtype=F64)
    logp = make_logp()
    loss, _ = method_loss("grpo", logp, None, REWARDS, MASK)
    # seq_mean_token_mean: grad -A * mask / (len_i * 12)
    expected = -adv.unsqueeze(1) * MASK / (LENGTHS.to(F64).unsqueeze(1) * 12)
    assert_close(grad_of(loss, logp), expected, atol=1e-6, rtol=1e-5)


def test_dr_grpo_gradient_by_hand_and_needs_max_len() -> None:
    adv = torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, -0.25, 0.75, -0.25, -0.25], dtype=F64)
    logp = make_logp()
    loss, _ = method_loss("dr_grpo", logp, None, REWARDS, MASK, max_len=8)
    # seq_sum_norm: grad -A * mask / (12 * 8)
    assert_close(grad_of(loss, logp), -adv.unsqueeze(1) * MASK / 96)
    with pytest.raises(ValueError, match="max_len"):
        method_loss("dr_grpo", logp, None, REWARDS, MASK)


@pytest.mark.parametrize(
    ("name", "pos", "neg"), [("psr", 1.0, 0.0), ("nsr", 0.0, 1.0), ("w_reinforce", 0.1, 1.0)]
)
def test_sign_methods_by_hand(name: str, pos: float, neg: float) -> None:
    r = REWARDS.reshape(-1)
    adv = torch.where(r > 0, torch.tensor(pos, dtype=F64), torch.tensor(-neg, dtype=F64))
    logp = make_logp()
    loss, _ = method_loss(name, logp, None, REWARDS, MASK)
    # token_mean over all 40 valid tokens
    assert int(LENGTHS.sum()) == 40
    assert_close(grad_of(loss, logp), -adv.unsqueeze(1) * MASK / 40)


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="name"):
        method_loss("a2c", make_logp(), None, REWARDS, MASK)


def test_wrong_logp_row_count() -> None:
    with pytest.raises(ValueError, match="logp"):
        method_loss("rloo", make_logp()[:10], None, REWARDS, MASK[:10])


def test_rewards_must_be_two_dimensional() -> None:
    with pytest.raises(ValueError, match="rewards"):
        method_loss("rloo", make_logp(), None, REWARDS.reshape(-1), MASK)


@pytest.mark.parametrize("shape", [(L,), (L, L), (B * K, 1)])
def test_mask_of_wrong_shape_is_rejected(shape: tuple[int, ...]) -> None:
    # mask must have logp's shape (B*k, L); a (L,) mask must not be silently broadcast
    # over the rows, and a mismatch must name the argument rather than fail inside torch
    with pytest.raises(ValueError, match="mask"):
        method_loss("rloo", make_logp(), None, REWARDS, torch.ones(shape, dtype=F64))


def test_non_tensor_mask_is_rejected() -> None:
    with pytest.raises(TypeError, match="mask"):
        method_loss("rloo", make_logp(), None, REWARDS, MASK.tolist())
