"""REINFORCE with a greedy-rollout baseline on a small routing problem: TSP with 8 cities.

Each instance is ``n`` points in the unit square; for ``n <= 9`` the optimal tour
is found by enumerating every permutation, so the optimality gap is exact
without any solver. A small pointer policy scores each unvisited point from its
offsets to the current point, the first point and the centroid of the
unvisited points; it is trained with rlcore's ``reinforce_loss`` and one of
rlcore's baselines (greedy rollout with a paired t-test by default), logs to
TensorBoard and checkpoints every epoch::

    python examples/reinforce_demo.py                 # about 10 s on 2 cores
    python examples/reinforce_demo.py --resume        # continue the same run
    tensorboard --logdir runs
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from rlcore import (
    CriticBaseline,
    ExponentialBaseline,
    GreedyRolloutBaseline,
    Logger,
    NoBaseline,
    load_checkpoint,
    progress,
    reinforce_loss,
    save_checkpoint,
    seed_everything,
)
from rlcore.config import option, parse_config, require

TEST_SEED = 1234


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Train a pointer policy on small TSP instances with REINFORCE and a baseline."""

    nodes: int = option(8, "points per instance (at most 9: the optimum is found by enumeration)")
    batch_size: int = option(256, "instances per gradient step")
    batches_per_epoch: int = option(25, "gradient steps per epoch")
    epochs: int = option(10, "epochs to train (in total, also when resuming)")
    lr: float = option(1e-3, "Adam learning rate")
    hidden: int = option(64, "width of the policy's hidden layers")
    baseline: Literal["rollout", "exponential", "critic", "none"] = option(
        "rollout", "REINFORCE baseline: greedy rollout (t-test), exponential, critic or none"
    )
    eval_size: int = option(2000, "instances in the rollout baseline's evaluation set")
    test_size: int = option(1000, "test instances (seed 1234) for the reported gap")
    seed: int = option(0, "random seed (0 is a seed)")
    run_dir: str = option("runs/reinforce_demo", "TensorBoard logs and checkpoint folder")
    resume: bool = option(False, "continue from run_dir/checkpoint.pt")

    def __post_init__(self) -> None:
        require(3 <= self.nodes <= 9, "nodes", "in [3, 9]", self.nodes)
        for name in ("batch_size", "batches_per_epoch", "epochs", "hidden", "test_size"):
            require(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))
        require(self.eval_size >= 2, "eval_size", ">= 2", self.eval_size)
        require(self.lr > 0, "lr", "> 0", self.lr)
        require(self.seed >= 0, "seed", ">= 0", self.seed)


class PointerPolicy(nn.Module):
    """Scores each unvisited point from its offsets to the current point, the
    first point and the centroid of the unvisited points."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.score = nn.Sequential(
            nn.Linear(9, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor, greedy: bool = False) -> tuple[Tensor, Tensor]:
        """Tours ``(B, n)`` of points ``x`` ``(B, n, 2)``, starting at point 0, and
        their log-probabilities ``(B,)``."""
        batch, n, _ = x.shape
        rows = torch.arange(batch, device=x.device)
        visited = torch.zeros(batch, n, dtype=torch.bool, device=x.device)
        visited[:, 0] = True
        current = torch.zeros(batch, dtype=torch.long, device=x.device)
        tour, logp = [current], x.new_zeros(batch)
        for _ in range(n - 1):
            left = (~visited).unsqueeze(-1).to(x.dtype)
            centroid = (x * left).sum(1, keepdim=True) / left.sum(1, keepdim=True)
            offsets = [x - x[rows, current].unsqueeze(1), x - x[:, :1], x - centroid]
            dists = [o.norm(dim=-1, keepdim=True) for o in offsets]
            logits = self.score(torch.cat(offsets + dists, dim=-1)).squeeze(-1)
            log_probs = torch.log_softmax(logits.masked_fill(visited, float("-inf")), dim=-1)
            current = log_probs.argmax(-1) if greedy else torch.multinomial(log_probs.exp(), 1)[:, 0]
            logp = logp + log_probs[rows, current]
            visited = visited.scatter(1, current[:, None], True)
            tour.append(current)
        return torch.stack(tour, dim=1), logp


def tour_cost(x: Tensor, tours: Tensor) -> Tensor:
    """Length of each closed tour ``(B, n)`` through points ``(B, n, 2)``: ``(B,)``."""
    pos = x.gather(1, tours.unsqueeze(-1).expand(-1, -1, 2))
    return (pos - pos.roll(-1, dims=1)).norm(dim=-1).sum(dim=1)


def optimal_cost(x: Tensor, chunk: int = 100) -> Tensor:
    """Exact optimum by enumerating the ``(n - 1)!`` tours that start at point 0."""
    n = x.shape[1]
    if n > 9:
        raise ValueError(f"x must have at most 9 points for enumeration, got {n}")
    perms = torch.tensor(list(itertools.permutations(range(1, n))), dtype=torch.long)
    tours = torch.cat((torch.zeros(len(perms), 1, dtype=torch.long), perms), dim=1)
    best = [
        tour_cost(
            part.repeat_interleave(len(tours), 0), tours.repeat(len(part), 1)
        ).view(len(part), -1).amin(dim=1)
        for part in x.split(chunk)
    ]
    return torch.cat(best)


def instances(num: int, nodes: int, seed: int) -> Tensor:
    """``num`` instances from a private generator: the global RNG is left alone."""
    return torch.rand(num, nodes, 2, generator=torch.Generator().manual_seed(seed))


def greedy_cost(policy: nn.Module, x: Tensor) -> Tensor:
    return tour_cost(x, policy(x, greedy=True)[0])


def make_baseline(cfg: DemoConfig, policy: PointerPolicy):
    """Each baseline name maps to its constructor: one table, no if/elif chain."""
    def critic() -> CriticBaseline:
        return CriticBaseline(nn.Sequential(
            nn.Flatten(1), nn.Linear(2 * cfg.nodes, cfg.hidden), nn.ReLU(),
            nn.Linear(cfg.hidden, 1), nn.Flatten(0),
        ))

    table = {
        "rollout": lambda: GreedyRolloutBaseline(
            policy, greedy_cost, lambda size, seed: instances(size, cfg.nodes, seed),
            eval_size=cfg.eval_size, seed=cfg.seed + 1,
        ),
        "exponential": lambda: ExponentialBaseline(beta=0.8),
        "critic": critic,
        "none": NoBaseline,
    }
    return table[cfg.baseline]()


def train(cfg: DemoConfig) -> dict[str, float]:
    """Train, log and checkpoint; returns the final test metrics."""
    seed_everything(cfg.seed)
    policy = PointerPolicy(cfg.hidden)
    baseline = make_baseline(cfg, policy)
    params = list(policy.parameters())
    if isinstance(baseline, CriticBaseline):
        params += list(baseline.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    run_dir, start_epoch = Path(cfg.run_dir), 0
    ckpt_path = run_dir / "checkpoint.pt"
    if cfg.resume:
        state = load_checkpoint(ckpt_path)
        saved = {k: v for k, v in state["config"].items() if k not in ("epochs", "resume")}
        current = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("epochs", "resume")}
        if saved != current:
            raise ValueError(f"--resume: {ckpt_path} was trained with another config: {saved}")
        policy.load_state_dict(state["policy"])
        optimizer.load_state_dict(state["optimizer"])
        baseline.load_state_dict(state["baseline"])
        start_epoch = state["epoch"] + 1
    test_set = instances(cfg.test_size, cfg.nodes, TEST_SEED)
    optimum = optimal_cost(test_set).mean()

    def test_gap() -> dict[str, float]:
        policy.eval()
        with torch.no_grad():
            test_cost = greedy_cost(policy, test_set).mean()
        return {"eval/cost": float(test_cost), "eval/gap": float(test_cost / optimum - 1)}

    if start_epoch == 0:
        print(f"untrained policy: greedy gap {100 * test_gap()['eval/gap']:.2f} %")
    logger = Logger(run_dir, config=dataclasses.asdict(cfg))
    step = start_epoch * cfg.batches_per_epoch
    result: dict[str, float] = {}
    for epoch in range(start_epoch, cfg.epochs):
        policy.train()
        tic = time.perf_counter()
        for _ in progress(range(cfg.batches_per_epoch), desc=f"epoch {epoch}"):
            x = torch.rand(cfg.batch_size, cfg.nodes, 2)
            tours, logp = policy(x)
            cost = tour_cost(x, tours)
            value, aux_loss = baseline.eval(x, cost)
            loss, metrics = reinforce_loss(logp, value - cost)
            optimizer.zero_grad()
            (loss + aux_loss).backward()
            grad_norm = nn.utils.clip_grad_norm_(params, max_norm=1.0)
            optimizer.step()
            step += 1
            logger.log({
                "train/cost": float(cost.mean()), "train/grad_norm": float(grad_norm),
                "loss/policy": metrics["loss/policy"], "baseline/value": float(value.mean()),
            }, step)
        sps = cfg.batches_per_epoch * cfg.batch_size / (time.perf_counter() - tic)
        baseline_metrics = baseline.epoch_callback(policy, epoch)
        logger.log({"time/sps": sps, **baseline_metrics}, step)
        result = test_gap()
        logger.log(result, step)
        print(f"epoch {epoch}: greedy test cost {result['eval/cost']:.4f} "
              f"(optimum {float(optimum):.4f}, gap {100 * result['eval/gap']:.2f} %), "
              f"{sps:.0f} instances/s"
              + (", baseline replaced" if baseline_metrics.get("baseline/replaced") else ""))
        save_checkpoint(ckpt_path, {
            "policy": policy.state_dict(), "optimizer": optimizer.state_dict(),
            "baseline": baseline.state_dict(), "epoch": epoch, "config": dataclasses.asdict(cfg),
        })
    logger.close()
    return result


def random_gap(nodes: int, size: int) -> float:
    """Gap of uniformly random tours on the test set, for comparison."""
    x = instances(size, nodes, TEST_SEED)
    keys = torch.rand(x.shape[:2], generator=torch.Generator().manual_seed(0))
    tours = torch.argsort(keys, dim=1)
    return float(tour_cost(x, tours).mean() / optimal_cost(x).mean() - 1)


if __name__ == "__main__":
    config = parse_config(DemoConfig)
    print(f"random tours: gap {100 * random_gap(config.nodes, config.test_size):.1f} %")
    final = train(config)
    print(f"done: greedy gap {100 * final['eval/gap']:.2f} %; logs and checkpoint in {config.run_dir}")
