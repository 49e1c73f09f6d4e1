"""OP, PCTSP and SPCTSP: feasibility of every decode, costs by hand, the paper's data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from problems.data import paper_dataset
from problems.decoding import decode
from problems.model import AttentionModel, ModelConfig
from problems.op import OP
from problems.pctsp import PCTSP
from problems.registry import PROBLEMS, make_problem
from problems.train import TrainConfig, train

SMALL = ModelConfig(embed_dim=32, heads=4, layers=1, ff_dim=64)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_decode_of_every_problem_is_feasible(name) -> None:
    torch.manual_seed(0)
    problem = make_problem(name)
    model = AttentionModel(problem, SMALL)
    inst = paper_dataset(name, 12, 20, 1234)
    plans = [("greedy", 1)] if problem.stochastic else [("greedy", 1), ("sample", 1),
                                                          ("multistart", 8)]
    for strategy, aug in plans:
        tours, costs = decode(model, inst, strategy, samples=4, augment=aug, batch_size=5)
        problem.check(inst, tours.unsqueeze(1))
        torch.testing.assert_close(costs, problem.cost(inst, tours.unsqueeze(1))[:, 0])


def test_stochastic_problem_refuses_best_of_many() -> None:
    model = AttentionModel(make_problem("spctsp"), SMALL)
    inst = paper_dataset("spctsp", 2, 10, 1234)
    with pytest.raises(ValueError, match="stochastic"):
        decode(model, inst, "sample", samples=4)


def op_instance() -> dict[str, torch.Tensor]:
    return {"depot": torch.tensor([[0.0, 0.0]]),
            "locs": torch.tensor([[[0.3, 0.4], [0.0, 0.6], [2.0, 0.0]]]),
            "prize": torch.tensor([[0.5, 0.25, 1.0]]), "max_length": torch.tensor([2.0])}


def test_op_cost_length_and_checker_by_hand() -> None:
    inst = op_instance()
    tour = torch.tensor([[[1, 2, 0, 0]]])  # 0.5 + sqrt(0.09 + 0.04) + 0.6 = 1.4606
    assert OP().cost(inst, tour).item() == pytest.approx(-0.75)
    assert OP().length(inst, tour).item() == pytest.approx(0.5 + np.sqrt(0.13) + 0.6, rel=1e-6)
    OP().check(inst, tour)
    with pytest.raises(ValueError, match="max_length"):
        OP().check(inst, torch.tensor([[[3, 0]]]))  # 2 + 2 > 2
    with pytest.raises(ValueError, match="twice"):
        OP().check(inst, torch.tensor([[[1, 1, 0]]]))


def test_op_mask_keeps_the_depot_reachable() -> None:
    inst = op_instance()
    problem = OP()
    state = problem.init_state(inst, 1)
    mask = problem.mask(state)
    assert mask[0, 0].tolist() == [False, False, False, True]  # node 3 is 2 away: 4 > 2
    state = problem.step(state, torch.tensor([[0]]))
    assert problem.mask(state)[0, 0].tolist() == [False, True, True, True]  # back: done


def test_op_prizes_follow_the_paper() -> None:
    inst = paper_dataset("op_dist", 3, 20, 1234)
    np.random.seed(1234)
    depot = np.random.uniform(size=(3, 2))
    locs = np.random.uniform(size=(3, 20, 2))
    d = np.linalg.norm(depot[:, None] - locs, axis=-1)
    expected = (1 + (d / d.max(axis=-1, keepdims=True) * 99).astype(int)) / 100
    np.testing.assert_allclose(inst["prize"].numpy(), expected, atol=1e-6)
    assert inst["max_length"].tolist() == [2.0, 2.0, 2.0]
    unif = paper_dataset("op_unif", 2, 50, 1234)
    assert unif["max_length"][0] == 3.0 and 0.01 <= unif["prize"].min() and unif["prize"].max() <= 1.0
    assert paper_dataset("op_const", 2, 100, 1234)["prize"].eq(1).all()


def test_pctsp_cost_and_checker_by_hand() -> None:
    inst = {"depot": torch.tensor([[0.0, 0.0]]),
            "locs": torch.tensor([[[0.0, 1.0], [1.0, 1.0], [5.0, 5.0]]]),
            "penalty": torch.tensor([[0.1, 0.2, 0.7]]), "prize": torch.tensor([[0.6, 0.5, 0.1]]),
            "real_prize": torch.tensor([[0.6, 0.5, 0.1]])}
    tour = torch.tensor([[[1, 2, 0, 0]]])  # 1 + 1 + sqrt(2), node 3 missed: + 0.7
    assert PCTSP().cost(inst, tour).item() == pytest.approx(2 + np.sqrt(2) + 0.7, rel=1e-6)
    PCTSP().check(inst, tour)
    with pytest.raises(ValueError, match="prize of 1"):
        PCTSP().check(inst, torch.tensor([[[1, 0, 0]]]))
    # SPCTSP: the real prize decides; here node 2's real prize is too small to return
    stochastic = {**inst, "real_prize": torch.tensor([[0.6, 0.3, 0.1]])}
    with pytest.raises(ValueError, match="prize of 1"):
        PCTSP(stochastic=True).check(stochastic, tour)


def test_pctsp_depot_is_masked_until_the_prize_is_collected() -> None:
    inst = paper_dataset("pctsp", 1, 20, 1234)
    problem = PCTSP()
    state = problem.init_state(inst, 1)
    order = inst["prize"][0].argsort(descending=True) + 1
    collected = 0.0
    for node in order.tolist():
        assert bool(problem.mask(state)[0, 0, 0]) == (collected < 1.0 - 1e-5)
        state = problem.step(state, torch.tensor([[node]]))
        collected += float(inst["prize"][0, node - 1])
        if collected >= 1.0:
            break
    assert not bool(problem.mask(state)[0, 0, 0])


def test_pctsp_data_ranges_follow_the_paper() -> None:
    inst = paper_dataset("spctsp", 200, 20, 1234)
    assert float(inst["penalty"].max()) <= 2.0 * 3 / 20 and float(inst["prize"].max()) <= 4 / 20
    assert bool((inst["real_prize"] <= 2 * inst["prize"] + 1e-7).all())
    assert not torch.equal(inst["real_prize"], inst["prize"])
    det = paper_dataset("pctsp", 5, 20, 1234)
    assert torch.equal(det["real_prize"], det["prize"])


@pytest.mark.parametrize("problem,prize,baseline", [
    ("op", "dist", "rollout"), ("pctsp", "dist", "rollout"), ("spctsp", "dist", "rollout"),
    ("op", "dist", "shared")])
def test_tiny_training_beats_the_untrained_model(tmp_path, problem, prize, baseline) -> None:
    # shared: 5 sampled rollouts per instance, the policy choosing the first node itself
    shared = {"baseline": "shared", "starts": 5, "first": "sampled"} if baseline == "shared" else {}
    cfg = TrainConfig(problem=problem, prize=prize, size=10, embed_dim=32, layers=1, **shared,
                      batch_size=128, epoch_size=128 * 20, epochs=2, lr=1e-3, val_size=200,
                      bl_eval_size=200, eval_batch_size=200, run_dir=str(tmp_path), seed=0)
    torch.manual_seed(0)
    untrained = AttentionModel(make_problem(cfg.problem_name),
                               ModelConfig(embed_dim=32, layers=1, ff_dim=128))
    val = paper_dataset(cfg.problem_name, 200, 10, 4321)
    _, before = decode(untrained, val, "greedy")
    metrics = train(cfg)
    assert metrics["eval/cost"] < float(before.mean()) - 0.1 * abs(float(before.mean()))
