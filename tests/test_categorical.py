"""The categorical support, the C51 projection and the cross-entropy loss, against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from distributional.categorical import Support, categorical_loss, project
from rlcore.estimators import nstep_returns

# Atoms 0, 1, 2, 3, 4 (dz = 1): every hand computation below is exact in float32.
SUPPORT = Support(0.0, 4.0, 5)


def one_hot(j: int, n: int = 5) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(j), n).float()


def proj(probs, returns, discounts, support=SUPPORT):
    return project(support, torch.stack(probs), torch.tensor(returns), torch.tensor(discounts))


def test_support_atoms_and_mean() -> None:
    s = Support(-10, 10, 51)
    assert s.delta == pytest.approx(0.4)
    assert s.atoms[0] == -10 and s.atoms[-1] == 10 and abs(float(s.atoms[25])) < 1e-7
    assert float(s.atoms[26]) == pytest.approx(0.4, abs=1e-7)
    assert float(SUPPORT.mean(torch.tensor([0.5, 0, 0, 0, 0.5]))) == 2.0


def test_projection_splits_between_neighbours() -> None:
    out = proj([one_hot(1)], [0.5], [1.0])  # 1 + 0.5 = 1.5: half to atom 1, half to atom 2
    assert torch.equal(out[0], torch.tensor([0.0, 0.5, 0.5, 0.0, 0.0]))
    out = proj([one_hot(2)], [0.0], [0.5])  # 0.5 * 2 = 1 lands on an atom
    assert torch.equal(out[0], one_hot(1))


def test_projection_mass_at_the_edges_is_clipped() -> None:
    out = proj([one_hot(4), one_hot(0), torch.full((5,), 0.2)], [1.0, -2.0, 10.0], [1.0, 1.0, 1.0])
    assert torch.equal(out[0], one_hot(4))  # 4 + 1 -> clipped to v_max
    assert torch.equal(out[1], one_hot(0))  # 0 - 2 -> clipped to v_min
    assert torch.equal(out[2], one_hot(4))  # everything above v_max


def test_terminal_transition_ignores_the_next_distribution() -> None:
    uniform = torch.full((5,), 0.2)
    out = proj([uniform, one_hot(4)], [2.25, 2.25], [0.0, 0.0])
    expected = torch.tensor([0.0, 0.0, 0.75, 0.25, 0.0])
    assert torch.equal(out[0], expected) and torch.equal(out[1], expected)


def test_nstep_target_by_hand() -> None:
    """Two steps of reward 1 with gamma 0.5: G = 1.5, discount 0.25, uniform next distribution.

    Tz = 1.5 + 0.25 z = 1.5, 1.75, 2, 2.25, 2.5, each with mass 0.2:
    atom 1 gets 0.1 + 0.05, atom 3 gets 0.05 + 0.1, atom 2 the remaining 0.7.
    """
    ret, disc, steps = nstep_returns(torch.tensor([1.0, 1.0, 1.0]), torch.zeros(3), 0.5, 2)
    assert float(ret[0]) == 1.5 and float(disc[0]) == 0.25 and int(steps[0]) == 2
    out = project(SUPPORT, torch.full((1, 5), 0.2), ret[:1], disc[:1])
    assert torch.allclose(out[0], torch.tensor([0.0, 0.15, 0.7, 0.15, 0.0]), atol=1e-7)


@pytest.mark.parametrize("v_min, v_max, n_atoms", [(-10.0, 10.0, 51), (0.0, 100.0, 51), (-3.0, 7.0, 2)])
def test_projection_of_a_distribution_on_the_support_is_the_identity(v_min, v_max, n_atoms) -> None:
    support = Support(v_min, v_max, n_atoms)
    probs = torch.softmax(torch.randn(64, n_atoms, generator=torch.Generator().manual_seed(0)), 1)
    out = project(support, probs, torch.zeros(64), torch.ones(64))
    assert torch.allclose(out, probs, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_projection_keeps_probability_mass(dtype) -> None:
    g = torch.Generator().manual_seed(1)
    support = Support(-10.0, 10.0, 51)
    probs = torch.softmax(torch.randn(512, 51, generator=g, dtype=dtype) * 3, 1)
    returns = torch.randn(512, generator=g, dtype=dtype) * 8
    discounts = torch.rand(512, generator=g, dtype=dtype) * (torch.rand(512, generator=g) > 0.1)
    out = project(support, probs, returns, discounts)
    assert out.dtype == dtype and bool((out >= 0).all())
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(out.sum(1), torch.ones(512, dtype=dtype), atol=tol, rtol=0)
    # The mean moves exactly like the return where nothing is clipped.
    inside = (returns.abs() < 0.5) & (discounts > 0)
    assert torch.allclose(support.mean(out)[inside], (returns + discounts * support.mean(probs))[inside],
                          atol=1e-4)


def test_categorical_loss_by_hand() -> None:
    logits = torch.zeros(2, 4, requires_grad=True)
    target = torch.tensor([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    loss = categorical_loss(logits, target)
    assert torch.allclose(loss, torch.full((2,), math.log(4)))
    loss.sum().backward()  # d/dlogits = softmax - target
    assert torch.allclose(logits.grad[0], torch.tensor([-0.75, 0.25, 0.25, 0.25]))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="v_min must be < v_max"):
        Support(1.0, 1.0, 51)
    with pytest.raises(ValueError, match="v_min must be < v_max"):
        Support(10.0, -10.0, 51)
    with pytest.raises(ValueError, match="n_atoms must be >= 2"):
        Support(0.0, 1.0, 1)
    with pytest.raises(TypeError, match="n_atoms"):
        Support(0.0, 1.0, 5.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="v_max must be finite"):
        Support(0.0, math.inf, 5)
    with pytest.raises(ValueError, match="probs must have shape"):
        project(SUPPORT, torch.zeros(3, 4), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="discounts must have shape"):
        project(SUPPORT, torch.zeros(3, 5), torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="logits and target"):
        categorical_loss(torch.zeros(3, 5), torch.zeros(3, 4))
