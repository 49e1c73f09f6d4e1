"""TSP: decoders give permutations, heuristics vs exact optimum, costs, training, solver API."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import problems.decoding as decoding_module
import problems.model as model_module
from problems import TSP, load_solver
from problems.base import gather_nodes
from problems.data import VALIDATION_SEED, paper_dataset, read_tsplib, tsplib_length
from problems.decoding import augment, by_instance, decode, from_instance
from problems.heuristics import (
    farthest_insertion,
    held_karp,
    nearest_neighbour,
    tour_lengths,
    two_opt,
)
from problems.model import AttentionModel, ModelConfig, attend, sample_nodes
from problems.registry import make_problem
from problems.solver import Solver, export_solver
from problems.train import TrainConfig, train

SMALL = ModelConfig(embed_dim=32, heads=4, layers=1, ff_dim=64)


def is_permutation(tours: np.ndarray, n: int) -> bool:
    return bool((np.sort(tours, axis=-1) == np.arange(n)).all())


@pytest.fixture
def float64() -> Iterator[None]:
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.fixture(scope="module")
def tiny_model() -> AttentionModel:
    torch.manual_seed(0)
    return AttentionModel(TSP(), SMALL)


def test_model_has_the_papers_size() -> None:
    params = sum(p.numel() for p in AttentionModel(TSP()).parameters())
    assert 650_000 < params < 750_000  # "about 0.7 M"


def two_steps_in(name: str):
    """A small model of problem ``name``, its cache, and the state after two decisions
    (each the last feasible node: the first is the depot, which ends an OP tour)."""
    torch.manual_seed(0)
    problem = make_problem(name)
    model = AttentionModel(problem, SMALL)
    inst = problem.generate(3, 6)
    state = problem.init_state(inst, 4)
    for _ in range(2):  # TSP's context exists from the second step
        mask = problem.mask(state)
        state = problem.step(state, mask.shape[-1] - 1 - mask.flip(-1).float().argmin(dim=-1))
    return problem, model, model.encode(inst), state


def full_context(emb: torch.Tensor, nodes: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """The paper's step context: the context nodes' embeddings and the extra features, concatenated."""
    parts = [gather_nodes(emb, nodes[..., j]) for j in range(nodes.shape[-1])]
    return torch.cat(parts + ([] if extra is None else [extra]), dim=-1)


@pytest.mark.parametrize("name", ["tsp", "cvrp", "op_dist", "pctsp"])
def test_cached_step_projection_equals_projecting_the_context(name) -> None:
    problem, model, cache, state = two_steps_in(name)
    nodes, extra = problem.context(state)
    torch.testing.assert_close(model._step_projection(cache, (nodes, extra)),
                               model.project_step(full_context(cache.emb, nodes, extra)))


@pytest.mark.parametrize("name", ["tsp", "cvrp", "op_dist", "pctsp"])
def test_log_probs_equal_the_papers_glimpse_and_pointer(name) -> None:
    """The cached, folded decoder step against the paper's formulas written out."""
    problem, model, cache, state = two_steps_in(name)
    context, mask = problem.context(state), problem.mask(state)
    assert ((~mask).sum(-1) > 1).all()  # a real choice left
    full = full_context(cache.emb, *context)
    query = model.project_fixed(cache.emb.mean(1, keepdim=True)) + model.project_step(full)
    key, value, logit_key = model.project_node(cache.emb).chunk(3, dim=-1)  # (B, n, d)
    d, heads = SMALL.embed_dim, SMALL.heads
    glimpses = []
    for h in torch.arange(d).view(heads, -1):  # each head's slice of the embedding
        scores = query[..., h] @ key[..., h].transpose(1, 2) / len(h) ** 0.5
        glimpses.append(scores.masked_fill(mask, float("-inf")).softmax(-1) @ value[..., h])
    glimpse = model.project_out(torch.cat(glimpses, dim=-1))
    logits = SMALL.tanh_clip * torch.tanh(glimpse @ logit_key.transpose(1, 2) / d**0.5)
    expected = torch.log_softmax(logits.masked_fill(mask, float("-inf")), dim=-1)
    torch.testing.assert_close(model.log_probs(cache, context, mask), expected)


def test_inference_encoder_in_sub_batches_equals_one_batch(monkeypatch) -> None:
    torch.manual_seed(0)
    model = AttentionModel(TSP(), SMALL)
    inst = TSP().generate(50, 7)
    with torch.no_grad():
        trained = model.encode(inst).emb  # train mode: batch norm uses the batch's statistics
        model.eval()
        whole = model.encode(inst).emb
        monkeypatch.setattr(model_module, "ENCODE_ROWS", 20)  # sub-batches of 2 instances
        torch.testing.assert_close(model.encode(inst).emb, whole)
        model.train()  # batch statistics need the whole batch: no sub-batches
        torch.testing.assert_close(model.encode(inst).emb, trained)


@pytest.mark.parametrize("queries,keys", [(5, 7), (1, 7), (5, model_module.SMALL_ATTENTION + 1)])
@pytest.mark.parametrize("with_mask", [False, True])
def test_attend_is_scaled_dot_product_attention(queries, keys, with_mask) -> None:
    # both of attend's paths (its own products; the kernel for one query or many keys)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, n, 4, generator=gen, dtype=torch.float64, requires_grad=True)
               for n in (queries, keys, keys))
    blocked = torch.rand(3, 1, queries, keys, generator=gen) < 0.4 if with_mask else None
    if blocked is not None:
        blocked[..., 0] = False  # every query sees a key
    out = attend(q, k, v, blocked)
    scores = q @ k.transpose(-1, -2) / 2.0  # sqrt(4)
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    expected = torch.softmax(scores, dim=-1) @ v
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    torch.testing.assert_close(grads, torch.autograd.grad(expected.square().sum(), (q, k, v)))


def test_sample_nodes_follows_the_probabilities_and_never_picks_a_masked_node() -> None:
    gen = torch.Generator().manual_seed(0)
    probs = torch.tensor([[0.0, 0.1, 0.0, 0.6, 0.3, 0.0],   # masked nodes at both ends
                          [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],   # all mass on the last node
                          [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])  # and on the first
    draws = sample_nodes(probs.log().expand(20_000, 3, 6), gen)  # (20000, 3)
    assert draws.shape == (20_000, 3)
    freq = torch.stack([torch.bincount(draws[:, r], minlength=6) for r in range(3)]) / 20_000
    assert (freq[probs == 0] == 0).all()
    # Binomial standard error of a frequency near 0.6 over 20,000 draws is ~0.0035.
    assert torch.allclose(freq, probs, atol=0.015)
    again = sample_nodes(probs.log().expand(20_000, 3, 6), torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


@pytest.mark.parametrize("strategy,samples,aug", [
    ("greedy", 1, 1), ("sample", 5, 1), ("multistart", 1, 1), ("greedy", 1, 8),
    ("multistart", 1, 8), ("sample", 3, 4),
])
def test_every_decode_is_a_permutation_and_cost_is_the_tour_length(tiny_model, strategy, samples, aug):
    inst = TSP().generate(7, 9, generator=torch.Generator().manual_seed(1))
    tours, costs = decode(tiny_model, inst, strategy, samples=samples, augment=aug, batch_size=3)
    assert tours.shape == (7, 9) and is_permutation(tours.numpy(), 9)
    recomputed = tour_lengths(inst["locs"].double().numpy(), tours.numpy())
    np.testing.assert_allclose(costs.numpy(), recomputed, rtol=1e-5)


def test_chunks_hold_at_most_max_rollouts_and_give_the_same_tours(tiny_model, monkeypatch) -> None:
    inst = TSP().generate(10, 8)
    whole = decode(tiny_model, inst, "multistart", augment=8)
    calls = []
    rollout = tiny_model.rollout

    def counted(part, k=1, **kw):
        calls.append(part["locs"].shape[0] * k)
        return rollout(part, k=k, **kw)

    monkeypatch.setattr(tiny_model, "rollout", counted)
    monkeypatch.setattr(decoding_module, "MAX_ROLLOUTS", 128)  # 64 rollouts per instance
    chunked = decode(tiny_model, inst, "multistart", augment=8)
    assert calls == [128] * 5
    torch.testing.assert_close(chunked, whole)


def test_more_search_is_never_worse(tiny_model) -> None:
    inst = TSP().generate(20, 10, generator=torch.Generator().manual_seed(2))
    _, greedy = decode(tiny_model, inst, "greedy")
    _, aug = decode(tiny_model, inst, "greedy", augment=8)
    _, multi = decode(tiny_model, inst, "multistart", augment=8)
    assert (aug <= greedy + 1e-6).all() and (multi <= aug + 1e-6).all()


def test_augmentations_preserve_tour_lengths() -> None:
    inst = TSP().generate(3, 6)
    aug = augment(inst, ("locs",), 8)["locs"].view(8, 3, 6, 2)
    tour = torch.arange(6).expand(3, 1, 6)
    lengths = [TSP().cost({"locs": aug[i]}, tour) for i in range(8)]
    for length in lengths[1:]:
        torch.testing.assert_close(length, lengths[0])


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(3, 12), st.just(2)),
              elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)))
def test_solver_gives_permutations_on_arbitrary_instances(coords) -> None:
    torch.manual_seed(0)
    solver = Solver(AttentionModel(TSP(), SMALL), size=8)
    with pytest.warns(UserWarning) if not 4 <= coords.shape[1] <= 16 else _no_warning():
        res = solver.solve(coords, decode="multistart", augment=2)
    assert is_permutation(res.tours, coords.shape[1])
    np.testing.assert_allclose(res.costs, tour_lengths(coords, res.tours), rtol=1e-9)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_held_karp_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for n in range(3, 9):
        coords = rng.random((n, 2))
        brute = min(tour_lengths(coords, np.array((0, *p))) for p in itertools.permutations(range(1, n)))
        cost, tour = held_karp(coords)
        assert cost == pytest.approx(brute, rel=1e-12)
        assert tour_lengths(coords, tour) == pytest.approx(cost, rel=1e-12)


def test_heuristics_give_permutations_and_two_opt_never_lengthens() -> None:
    coords = np.random.default_rng(1).random((30, 15, 2))
    nn, fi = nearest_neighbour(coords), farthest_insertion(coords)
    random_tours = np.argsort(np.random.default_rng(2).random((30, 15)), axis=1)
    for tours in (nn, fi, random_tours):
        assert is_permutation(tours, 15)
        better = two_opt(coords, tours)
        assert is_permutation(better, 15)
        assert (tour_lengths(coords, better) <= tour_lengths(coords, tours) + 1e-12).all()
    optimum = np.array([held_karp(c)[0] for c in coords[:5]])
    assert (tour_lengths(coords[:5], fi[:5]) >= optimum - 1e-12).all()


def test_duplicate_points_are_valid() -> None:
    coords = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.5, 0.2]])
    torch.manual_seed(0)
    res = Solver(AttentionModel(TSP(), SMALL), size=5).solve(coords, improve="2opt")
    assert is_permutation(res.tours, 5)
    # Optimum: both (0,0) copies, then (0.5, 0.2), both (1,1) copies, back to (0,0).
    expected = np.hypot(0.5, 0.2) + np.hypot(0.5, 0.8) + np.sqrt(2)
    assert held_karp(coords)[0] == pytest.approx(expected, rel=1e-9)


def test_scale_invariance_and_caller_units(tiny_model) -> None:
    coords = np.random.default_rng(3).random((4, 10, 2))
    solver = Solver(tiny_model, size=10)
    small = solver.solve(coords)
    big = solver.solve(coords * 1000 + 50)
    np.testing.assert_array_equal(small.tours, big.tours)
    np.testing.assert_allclose(big.costs, 1000 * small.costs, rtol=1e-9)


def test_bad_input_gets_a_clear_error(tiny_model, tmp_path) -> None:
    solver = Solver(tiny_model, size=10)
    bad = np.random.rand(10, 2)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        solver.solve(bad)
    with pytest.raises(ValueError, match="NaN or inf"):
        solver.solve(np.full((5, 2), np.inf))
    with pytest.raises(ValueError, match="shape"):
        solver.solve(np.random.rand(10, 3))
    with pytest.raises(ValueError, match="at least 3 nodes"):
        solver.solve(np.random.rand(2, 2))
    with pytest.raises(ValueError, match="decode"):
        solver.solve(np.random.rand(10, 2), decode="beam")
    with pytest.raises(ValueError, match="augment"):
        solver.solve(np.random.rand(10, 2), augment=3)
    torch.save({"problem": "cvrp", "size": 20, "model": {}, "model_config": {}}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="cvrp model, not tsp"):
        load_solver(tmp_path / "c.pt", problem="tsp")
    torch.save({"weights": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a routing checkpoint"):
        load_solver(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="shipped"):
        load_solver("tsp7000")


def test_paper_dataset_is_reproducible_and_leaves_the_global_rng() -> None:
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    a = paper_dataset("tsp", 3, 20, 1234)["locs"]
    assert np.random.rand() == expected
    np.random.seed(1234)
    assert np.allclose(a.numpy(), np.random.uniform(size=(3, 20, 2)))


def test_tsplib_reader_and_rounding(tmp_path) -> None:
    path = tmp_path / "sq.tsp"
    path.write_text("NAME: sq\nTYPE: TSP\nDIMENSION: 4\nEDGE_WEIGHT_TYPE: EUC_2D\n"
                    "NODE_COORD_SECTION\n1 0 0\n2 0 3.4\n3 3.6 3.4\n4 3.6 0\nEOF\n")
    name, coords = read_tsplib(path)
    assert name == "sq" and coords.shape == (4, 2)
    assert tsplib_length(coords, np.arange(4)) == 3 + 4 + 3 + 4  # nint(3.4)=3, nint(3.6)=4


def test_training_a_tiny_model_beats_random_tours(tmp_path) -> None:
    cfg = TrainConfig(size=10, embed_dim=32, layers=2, batch_size=128, epoch_size=128 * 25,
                      epochs=2, lr=1e-3,
                      val_size=200, bl_eval_size=200, eval_batch_size=200, baseline="rollout",
                      run_dir=str(tmp_path), seed=0)
    metrics = train(cfg)
    val = paper_dataset("tsp", 200, 10, 4321)["locs"].double().numpy()
    random_cost = tour_lengths(val, np.argsort(np.random.default_rng(0).random((200, 10)), 1)).mean()
    optimum = np.mean([held_karp(c)[0] for c in val[:50]])
    assert metrics["eval/cost"] < 0.75 * random_cost  # random ~5.2, optimum ~2.9
    assert metrics["eval/cost"] < 1.25 * optimum
    solver = load_solver(export_solver(tmp_path / "checkpoint.pt", tmp_path / "m.pt"), problem="tsp")
    assert solver.size == 10


def test_export_of_several_checkpoints_averages_their_weights(tmp_path) -> None:
    cfg = ModelConfig(embed_dim=16, layers=1, ff_dim=32)
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        state = {"problem": "tsp", "size": 10, "model_config": dataclasses.asdict(cfg),
                 "model": AttentionModel(TSP(), cfg).state_dict(), "epoch": seed}
        paths.append(tmp_path / f"c{seed}.pt")
        torch.save(state, paths[-1])
    soup = load_solver(export_solver(paths, tmp_path / "soup.pt", note="x"), problem="tsp")
    a, b = (torch.load(p, weights_only=False)["model"] for p in paths)
    for name, value in soup.model.state_dict().items():
        expected = (a[name] + b[name]) / 2 if value.is_floating_point() else a[name]
        assert torch.allclose(value, expected.to(value.dtype), atol=1e-7), name
    assert not torch.equal(a["init_embed.weight"], b["init_embed.weight"])
    in_memory = load_solver(paths, problem="tsp").model.state_dict()
    assert all(torch.equal(in_memory[k], v) for k, v in soup.model.state_dict().items())
    provenance = torch.load(tmp_path / "soup.pt", weights_only=False)["provenance"]
    assert [o["epoch"] for o in provenance["soup_of"]] == [0, 1] and provenance["note"] == "x"
    other = torch.load(paths[1], weights_only=False) | {"size": 20}
    torch.save(other, tmp_path / "c20.pt")
    with pytest.raises(ValueError, match="size"):
        export_solver([paths[0], tmp_path / "c20.pt"], tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="non-empty"):
        export_solver([], tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="name_or_path: .*size"):
        load_solver([paths[0], tmp_path / "c20.pt"])


def test_pomo_training_resumes_exactly(tmp_path) -> None:
    kw = dict(size=8, embed_dim=16, layers=1, batch_size=16, epoch_size=64, lr=1e-3, val_size=50, eval_batch_size=50,
              baseline="shared", starts=4, seed=3)
    straight = train(TrainConfig(epochs=2, run_dir=str(tmp_path / "a"), **kw))
    train(TrainConfig(epochs=1, run_dir=str(tmp_path / "b"), **kw))
    resumed = train(TrainConfig(epochs=2, run_dir=str(tmp_path / "b"), resume=True, **kw))
    assert resumed["eval/cost"] == straight["eval/cost"]
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_score_first_returns_the_policys_first_step(tiny_model) -> None:
    inst = TSP().generate(5, 7, generator=torch.Generator().manual_seed(2))
    first = TSP().starts(inst, 7)
    with torch.no_grad():
        scored = tiny_model.rollout(inst, k=7, first=first, score_first=True)
        plain = tiny_model.rollout(inst, k=7, first=first)
        greedy = tiny_model.rollout(inst)  # chooses its own first node
    assert plain.first_logp is None and torch.equal(scored.actions, plain.actions)
    assert scored.first_logp.shape == (5, 7)
    torch.testing.assert_close(scored.first_logp.exp().sum(-1), torch.ones(5))
    assert torch.equal(greedy.actions[:, 0, 0], scored.first_logp.argmax(-1))


def test_scored_starts_train_the_first_decision_and_forced_ones_do_not(tmp_path) -> None:
    # the placeholder query is used by the first decision only
    kw = dict(size=8, embed_dim=16, layers=1, batch_size=16, epoch_size=64, epochs=1, lr=1e-2,
              val_size=20, eval_batch_size=20, baseline="shared", seed=3)
    moved = {}
    for first in ("forced", "scored"):
        train(TrainConfig(first=first, run_dir=str(tmp_path / first), **kw))
        torch.manual_seed(3)  # as train's seed_everything: the initial weights
        init = AttentionModel(TSP(), ModelConfig(embed_dim=16, layers=1, ff_dim=64))
        trained = torch.load(tmp_path / first / "checkpoint.pt", weights_only=False)["model"]
        moved[first] = float((trained["placeholder"] - init.placeholder.detach()).abs().max())
    assert moved["forced"] == 0.0 and moved["scored"] > 1e-3


def test_train_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="size"):
        TrainConfig(size=2)
    with pytest.raises(ValueError, match="starts"):
        TrainConfig(size=10, starts=11)
    with pytest.raises(ValueError, match="first"):
        TrainConfig(first="sampled")  # the default baseline is the greedy rollout
    assert TrainConfig(baseline="shared", first="sampled").first == "sampled"
    with pytest.raises(ValueError, match="leader"):
        TrainConfig(baseline="shared", leader=0.5)
    with pytest.raises(ValueError, match="leader"):
        TrainConfig(leader=2.0)  # the greedy rollout baseline has no best rollout


def test_by_instance_gathers_each_instances_copies_in_one_row() -> None:
    x = torch.arange(12).view(6, 2)  # 3 copies of 2 instances, copy-major, 2 rollouts each
    grouped = by_instance(x, 3)
    assert grouped.tolist() == [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]]
    assert torch.equal(from_instance(grouped, 3), x)
    actions = torch.arange(24).view(6, 2, 2)
    assert torch.equal(from_instance(by_instance(actions, 3), 3), actions)
    assert by_instance(actions, 3)[1, 2].tolist() == [12, 13]  # instance 1, copy 1, rollout 0
    with pytest.raises(ValueError, match="copies"):
        by_instance(x, 4)


def test_augmented_training_shares_one_baseline_across_the_copies(tmp_path, monkeypatch) -> None:
    import problems.train as train_module
    seen = []

    def spy(logp, advantage, *args, **kwargs):
        seen.append(advantage.detach().view(2 * 4, 3))  # (A * B, k)
        return real(logp, advantage, *args, **kwargs)

    real = train_module.reinforce_loss
    monkeypatch.setattr(train_module, "reinforce_loss", spy)
    train(TrainConfig(size=8, embed_dim=16, layers=1, batch_size=4, epoch_size=4, epochs=1,
                      val_size=20, eval_batch_size=20, baseline="shared", starts=3, augment=2,
                      seed=3, run_dir=str(tmp_path)))
    advantage = seen[0]
    per_instance = by_instance(advantage, 2).sum(1)
    per_copy = advantage.sum(1)
    torch.testing.assert_close(per_instance, torch.zeros(4))
    assert per_copy.abs().max() > 1e-3  # each copy alone is judged against the pooled mean
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(baseline="shared", augment=3)
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment=2)  # the greedy rollout baseline has no rollouts to pool


def test_leader_reward_reaches_the_gradient(tmp_path) -> None:
    kw = dict(size=8, embed_dim=16, layers=1, batch_size=16, epoch_size=16, epochs=1, lr=1e-2,
              val_size=20, eval_batch_size=20, baseline="shared", seed=3)
    weights = []
    for leader in (1.0, 1.0, 3.0):
        run = tmp_path / f"{len(weights)}"
        train(TrainConfig(leader=leader, run_dir=str(run), **kw))
        weights.append(torch.load(run / "checkpoint.pt", weights_only=False)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_reference_solvers_name_the_extra_when_missing(monkeypatch) -> None:
    import builtins

    from problems import reference

    real_import = builtins.__import__

    def no_elkai(name, *args, **kwargs):
        if name in ("elkai", "ortools"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_elkai)
    with pytest.raises(ImportError, match=r"\.\[reference\]"):
        reference.lkh_tsp(np.random.rand(5, 2))
    with pytest.raises(ImportError, match=r"\.\[reference\]"):
        reference.ortools_tsp(np.random.rand(5, 2))


def test_reference_solvers_find_the_optimum_of_small_instances() -> None:
    pytest.importorskip("elkai")
    pytest.importorskip("ortools")
    from problems.reference import lkh_tsp, ortools_tsp

    coords = np.random.default_rng(4).random((3, 9, 2)) * 50
    optimum = np.array([held_karp(c)[0] for c in coords])
    for tours in (lkh_tsp(coords), ortools_tsp(coords, time_limit=0.2)):
        assert is_permutation(tours, 9)
        np.testing.assert_allclose(tour_lengths(coords, tours), optimum, rtol=1e-6)


def test_tsplib_evaluation_reads_every_shared_instance(tiny_model) -> None:
    from tests.conftest import ROOT

    folder = ROOT.parent / "shared" / "data" / "tsplib"
    if not (folder / "optimal.txt").is_file():
        pytest.skip("../shared/data/tsplib is not beside this checkout")
    from problems.bench import tsplib_table

    rows = tsplib_table(Solver(tiny_model, size=100), folder, "greedy", 1)
    assert len(rows) == 29
    for name, optimum, length, gap in rows:
        assert length >= optimum, name  # nothing beats the proven optimum
        assert gap == pytest.approx(length / optimum - 1)


def test_validation_gap_against_a_reference_file(tmp_path) -> None:
    ref = tmp_path / "ref.npz"
    np.savez_compressed(ref, costs=np.full(50, 2.0), name="made up")
    metrics = train(TrainConfig(size=8, embed_dim=16, layers=1, batch_size=16, epoch_size=32,
                                epochs=1, val_size=50, eval_batch_size=50, baseline="shared",
                                starts=4, val_reference=str(ref), run_dir=str(tmp_path / "r")))
    assert metrics["eval/gap"] == pytest.approx(metrics["eval/cost"] / 2.0 - 1)


def test_resume_of_a_run_started_from_other_weights_needs_no_init_from(tmp_path) -> None:
    kw = dict(size=8, embed_dim=16, layers=1, batch_size=16, epoch_size=32, val_size=20,
              eval_batch_size=20, baseline="shared", starts=4)
    train(TrainConfig(epochs=1, run_dir=str(tmp_path / "small"), **kw))
    origin = str(tmp_path / "small" / "checkpoint.pt")
    run = tmp_path / "fine"
    train(TrainConfig(epochs=1, lr=2e-5, init_from=origin, run_dir=str(run), **kw))
    assert "eval/cost" in train(TrainConfig(epochs=2, lr=2e-5, resume=True, run_dir=str(run), **kw))
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 1 and state["config"]["init_from"] == origin


def test_best_checkpoint_holds_the_epoch_with_the_lowest_validation_cost(tmp_path) -> None:
    kw = dict(size=8, embed_dim=16, layers=1, batch_size=16, epoch_size=32, val_size=20,
              eval_batch_size=20, baseline="shared", starts=4, lr=3e-2, run_dir=str(tmp_path))
    costs: list[float] = []
    for epochs in range(1, 9):  # until an epoch ends worse than an earlier one
        costs.append(train(TrainConfig(epochs=epochs, resume=epochs > 1, **kw))["eval/cost"])
        if costs[-1] > min(costs):
            break
    assert costs[-1] > min(costs)  # a high lr: the last epoch is not the best
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["best_val_cost"] == min(costs)
    assert best["epoch"] == costs.index(min(costs))
    model = AttentionModel(TSP(), ModelConfig(**best["model_config"]))
    model.load_state_dict(best["model"])
    _, val_cost = decode(model, paper_dataset("tsp", 20, 8, VALIDATION_SEED))
    assert float(val_cost.mean()) == pytest.approx(min(costs), rel=1e-6)


def test_resume_accepts_checkpoints_older_than_new_config_fields(tmp_path) -> None:
    kw = dict(size=8, embed_dim=16, layers=1, batch_size=16, epoch_size=32, val_size=20,
              eval_batch_size=20, baseline="shared", starts=4, run_dir=str(tmp_path))
    train(TrainConfig(epochs=1, **kw))
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    del state["config"]["max_minutes"]  # as if written before the field existed
    torch.save(state, path)
    assert "eval/cost" in train(TrainConfig(epochs=2, resume=True, **kw))
    state = torch.load(path, weights_only=False)
    state["config"]["lr"] = 0.5
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"trained with --lr 0\.5 \(given 0\.0001\); only"):
        train(TrainConfig(epochs=3, resume=True, **kw))


@pytest.mark.parametrize("name", ["tsp", "cvrp", "sdvrp", "op_dist", "pctsp"])
def test_rollout_log_likelihood_equals_summing_step_by_step(name, float64) -> None:
    """The batched replay of a sampled rollout gives the log-probabilities, and gradients,
    of taking its decisions one step at a time (in float64, where summation order is
    immaterial)."""
    torch.manual_seed(0)
    problem = make_problem(name)
    model = AttentionModel(problem, SMALL)
    inst = {key: v.double() if v.is_floating_point() else v for key, v in problem.generate(4, 7).items()}
    first = problem.starts(inst, 3) if name == "tsp" else None
    out = model.rollout(inst, k=3, greedy=False, first=first, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad(out.logp.sum(), list(model.parameters()), allow_unused=True)
    cache, state = model.encode(inst), problem.init_state(inst, 3)
    logp = torch.zeros(4, 3)
    for t in range(out.actions.shape[-1]):
        action = out.actions[..., t]
        if t or first is None:
            dynamic = problem.dynamic(state) if model.project_dynamic is not None else None
            lp = model.log_probs(cache, problem.context(state), problem.mask(state), dynamic)
            logp = logp + lp.gather(2, action.unsqueeze(-1)).squeeze(-1)
        state = problem.step(state, action)
    assert problem.finished(state)
    torch.testing.assert_close(out.logp, logp)
    expected = torch.autograd.grad(logp.sum(), list(model.parameters()), allow_unused=True)
    for got, want in zip(grads, expected, strict=True):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want)
