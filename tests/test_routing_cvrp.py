"""CVRP: feasibility of every decode, cost by hand, the paper's data convention, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from problems.cvrp import CVRP, capacity_for
from problems.data import paper_dataset, paper_test_set
from problems.decoding import decode
from problems.model import AttentionModel, ModelConfig
from problems.registry import make_problem
from problems.train import TrainConfig, init_weights, train

SMALL = ModelConfig(embed_dim=32, heads=4, layers=1, ff_dim=64)


@pytest.mark.parametrize("strategy,aug", [("greedy", 1), ("sample", 1), ("multistart", 1),
                                          ("multistart", 8)])
def test_every_decode_is_feasible_and_cost_matches(strategy, aug) -> None:
    torch.manual_seed(0)
    problem = CVRP()
    model = AttentionModel(problem, SMALL)
    inst = problem.generate(16, 12, generator=torch.Generator().manual_seed(0))
    tours, costs = decode(model, inst, strategy, samples=4, augment=aug, batch_size=5)
    problem.check(inst, tours.unsqueeze(1))
    torch.testing.assert_close(costs, problem.cost(inst, tours.unsqueeze(1))[:, 0])


def test_cost_by_hand() -> None:
    inst = {"depot": torch.tensor([[0.0, 0.0]]), "locs": torch.tensor([[[3.0, 4.0], [0.0, 1.0]]]),
            "demand": torch.tensor([[0.5, 0.6]])}
    # depot -> 1 (5) -> depot (5) -> 2 (1) -> depot (1); trailing depot visits cost nothing
    tours = torch.tensor([[[1, 0, 2, 0, 0]]])
    assert CVRP().cost(inst, tours).item() == pytest.approx(12.0)
    CVRP().check(inst, tours)
    with pytest.raises(ValueError, match="capacity"):
        CVRP().check(inst, torch.tensor([[[1, 2, 0]]]))
    with pytest.raises(ValueError, match="exactly once"):
        CVRP().check(inst, torch.tensor([[[1, 0, 1, 0]]]))


def test_paper_convention_for_the_data() -> None:
    inst = paper_dataset("cvrp", 2, 20, 1234)
    np.random.seed(1234)
    depot = np.random.uniform(size=(2, 2))
    locs = np.random.uniform(size=(2, 20, 2))
    demand = np.random.randint(1, 10, size=(2, 20))
    assert np.allclose(inst["depot"].numpy(), depot) and np.allclose(inst["locs"].numpy(), locs)
    assert np.allclose(inst["demand"].numpy() * 30, demand, atol=1e-5)
    assert capacity_for(20) == 30 and capacity_for(50) == 40 and capacity_for(100) == 50


def test_the_test_set_is_a_prefix_of_the_papers_10000() -> None:
    head = paper_test_set("cvrp", 20, 3)
    np.random.seed(1234)
    depot = np.random.uniform(size=(10_000, 2))
    locs = np.random.uniform(size=(10_000, 20, 2))
    assert np.allclose(head["depot"].numpy(), depot[:3]) and np.allclose(head["locs"].numpy(), locs[:3])
    # drawing 3 instances directly gives other locations: every depot comes first
    assert not torch.equal(paper_dataset("cvrp", 3, 20, 1234)["locs"], head["locs"])


@pytest.mark.parametrize("name", ["cvrp", "sdvrp"])
def test_tiny_training_beats_the_untrained_model(tmp_path, name) -> None:
    cfg = TrainConfig(problem=name, size=10, embed_dim=32, layers=1, batch_size=128,
                      epoch_size=128 * 20, epochs=2, lr=1e-3, val_size=200, bl_eval_size=200,
                      eval_batch_size=200, run_dir=str(tmp_path), seed=0)
    torch.manual_seed(0)
    untrained = AttentionModel(make_problem(name), ModelConfig(embed_dim=32, layers=1, ff_dim=128))
    val = paper_dataset(name, 200, 10, 4321)
    _, before = decode(untrained, val, "greedy")
    metrics = train(cfg)
    assert metrics["eval/cost"] < 0.8 * float(before.mean())


def test_sdvrp_splits_a_delivery_by_hand() -> None:
    from problems.sdvrp import SDVRP, deliveries

    inst = {"depot": torch.tensor([[0.0, 0.0]]), "locs": torch.tensor([[[0.0, 1.0], [0.0, 2.0]]]),
            "demand": torch.tensor([[0.75, 0.5]])}
    # trip 1: node 1 takes 0.75, node 2 gets the last 0.25; trip 2: node 2 gets its other 0.25
    tours = torch.tensor([[[1, 2, 0, 2, 0]]])
    assert deliveries(inst["demand"], tours)[0, 0].tolist() == [0.75, 0.25, 0.0, 0.25, 0.0]
    SDVRP().check(inst, tours)
    assert SDVRP().cost(inst, tours).item() == pytest.approx(2 + 2 + 2 * 2)
    with pytest.raises(ValueError, match="fully delivered"):
        SDVRP().check(inst, torch.tensor([[[1, 2, 0, 0, 0]]]))
    with pytest.raises(ValueError, match="exactly once"):
        CVRP().check(inst, tours)  # the same routes are infeasible without splitting


def test_init_from_copies_what_fits_across_problems(tmp_path) -> None:
    cfg = ModelConfig(embed_dim=16, layers=1, ff_dim=32)
    cvrp = AttentionModel(make_problem("cvrp"), cfg)
    torch.save({"model": cvrp.state_dict()}, tmp_path / "cvrp.pt")
    sdvrp = AttentionModel(make_problem("sdvrp"), cfg)
    fresh = init_weights(sdvrp, tmp_path / "cvrp.pt")
    assert fresh == ["project_dynamic.weight"]
    for name, value in cvrp.state_dict().items():
        assert torch.equal(sdvrp.state_dict()[name], value), name
    wider = AttentionModel(make_problem("cvrp"), ModelConfig(embed_dim=32, layers=1, ff_dim=64))
    with pytest.raises(ValueError, match="init_from"):
        init_weights(wider, tmp_path / "cvrp.pt")


def _partly_delivered(model: AttentionModel) -> tuple:
    """Encoding, context, mask and dynamic features of 5 SDVRP rollouts on 3 instances after
    3 steps: some demand delivered, so the dynamic features differ per rollout."""
    problem = model.problem
    inst = problem.generate(3, 7)
    state = problem.init_state(inst, 5)
    for _ in range(3):
        state = problem.step(state, problem.mask(state).float().argmin(dim=-1))
    return model.encode(inst), problem.context(state), problem.mask(state), problem.dynamic(state)


def test_sdvrp_warm_started_from_cvrp_starts_as_that_policy(tmp_path) -> None:
    """The dynamic-feature projection starts at zero, so the remaining demand has no say yet."""
    torch.manual_seed(0)
    torch.save({"model": AttentionModel(make_problem("cvrp"), SMALL).state_dict()},
               tmp_path / "cvrp.pt")
    model = AttentionModel(make_problem("sdvrp"), SMALL)
    init_weights(model, tmp_path / "cvrp.pt")
    cache, context, mask, dynamic = _partly_delivered(model)
    assert dynamic.abs().sum() > 0
    torch.testing.assert_close(model.log_probs(cache, context, mask, dynamic),
                               model.log_probs(cache, context, mask))


def test_sdvrp_dynamic_attention_equals_per_rollout_keys() -> None:
    """The rank-F shortcut gives what shifting every rollout's keys and values gives."""
    torch.manual_seed(0)
    model = AttentionModel(make_problem("sdvrp"), SMALL)
    torch.nn.init.normal_(model.project_dynamic.weight)  # it starts at zero, which tests nothing
    cache, context, mask, dynamic = _partly_delivered(model)
    batch, k, n = mask.shape
    d, heads = SMALL.embed_dim, SMALL.heads
    query = (cache.fixed + model._step_projection(cache, context)).view(batch, k, heads, -1)
    shift_k, shift_v, shift_l = model.project_dynamic(dynamic).chunk(3, dim=-1)  # (B, k, n, d)

    def shifted(static: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:  # (B, k, n, H, d/H)
        return (static.transpose(1, 2).reshape(batch, 1, n, d) + shift).view(batch, k, n, heads, -1)

    scores = torch.einsum("bkhc,bknhc->bkhn", query, shifted(cache.glimpse_key, shift_k))
    scores = (scores / (d // heads) ** 0.5).masked_fill(mask.unsqueeze(2), float("-inf"))
    glimpse = torch.einsum("bkhn,bknhc->bkhc", scores.softmax(-1), shifted(cache.glimpse_val, shift_v))
    glimpse = model.project_out(glimpse.reshape(batch, k, d))
    logit_key = model.project_node(cache.emb).chunk(3, dim=-1)[2]  # (B, n, d), as the paper has it
    logits = torch.einsum("bkd,bknd->bkn", glimpse, logit_key.unsqueeze(1) + shift_l)
    logits = SMALL.tanh_clip * torch.tanh(logits / d**0.5)
    expected = torch.log_softmax(logits.masked_fill(mask, float("-inf")), dim=-1)
    torch.testing.assert_close(model.log_probs(cache, context, mask, dynamic), expected)
