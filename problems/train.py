"""Train an attention model with REINFORCE: ``python -m problems.train --problem tsp --size 20``.

Defaults are the paper's (Kool et al. 2019): greedy-rollout baseline with a
paired t-test and an exponential warm-up epoch, Adam 1e-4, batch 512, gradient
norm clipped at 1. ``--baseline shared --starts N`` trains POMO-style: N
rollouts per instance from distinct first nodes, each judged against their mean
(``--starts 0`` uses every node); ``--first scored`` also trains the policy's own
choice of first node on those rollouts, which greedy decoding then uses.
TensorBoard logs and a checkpoint each epoch go to ``--run-dir``
(``checkpoint.pt``, and ``best.pt`` for the epoch with the lowest validation
cost); ``--resume`` continues exactly where the last epoch ended.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from problems.base import Instance
from problems.data import VALIDATION_SEED, paper_dataset
from problems.decoding import augment, by_instance, decode, from_instance
from problems.model import AttentionCritic, AttentionModel, ModelConfig
from problems.registry import make_problem
from rlcore import (
    Baseline,
    CriticBaseline,
    ExponentialBaseline,
    GreedyRolloutBaseline,
    Logger,
    NoBaseline,
    SharedBaseline,
    all_action_loss,
    leader_reward,
    load_checkpoint,
    progress,
    reinforce_loss,
    save_checkpoint,
    seed_everything,
)
from rlcore.config import option, parse_config, require


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Train an attention model for a routing problem with REINFORCE."""

    problem: Literal["tsp", "cvrp", "sdvrp", "op", "pctsp", "spctsp"] = option(
        "tsp", "problem family")
    prize: Literal["const", "unif", "dist"] = option("dist", "OP prize distribution (--problem op)")
    size: int = option(20, "nodes per training instance")
    baseline: Literal["rollout", "shared", "exponential", "critic", "none"] = option(
        "rollout", "REINFORCE baseline: greedy rollout (paper), shared (POMO multi-start), "
        "exponential moving average, critic network, or none")
    starts: int = option(0, "rollouts per instance for --baseline shared; 0 = one per node")
    first: Literal["forced", "scored", "sampled"] = option(
        "forced", "--baseline shared: 'forced' (POMO) makes each rollout start at a distinct "
        "node, so the first decision is never trained; 'scored' forces the starts too and "
        "also trains the policy's first decision on them, shifting it toward the starts whose "
        "rollouts beat their mean (the exact gradient over the starts, rlcore's "
        "all_action_loss), so greedy decoding starts where the policy does well (TSP, CVRP); "
        "'sampled' lets the policy choose every rollout's first node (OP, PCTSP: optional "
        "nodes, where forcing every start spends the rollouts on starts a good tour avoids)")
    leader: float = option(1.0, "--baseline shared: the advantage of each instance's best rollout "
                           "is multiplied by this (Leader Reward, Wang et al. 2024), which "
                           "shifts the policy toward its best rollouts rather than their mean; "
                           "1 = off")
    augment: int = option(1, "--baseline shared: train on this many symmetric copies of each "
                          "instance (1, 2, 4 or 8; flips and rotations of the unit square, as "
                          "decode's augment), --starts rollouts on each, all judged against one "
                          "mean per instance (Sym-NCO's shared baseline, Kim et al. 2022), so "
                          "the policy is pushed to solve every copy alike; each copy is encoded "
                          "and decoded on its own, so a step costs about A times as much")
    embed_dim: int = option(128, "model width (the paper: 128)")
    layers: int = option(3, "encoder layers (the paper: 3)")
    batch_size: int = option(512, "instances per gradient step")
    epoch_size: int = option(1_280_000, "instances per epoch (the paper: 2500 batches of 512)")
    epochs: int = option(100, "epochs in total (also when resuming)")
    lr: float = option(1e-4, "Adam learning rate")
    lr_decay: float = option(1.0, "learning rate multiplied by this after every epoch")
    weight_decay: float = option(0.0, "Adam weight decay")
    max_grad_norm: float = option(1.0, "gradient norm clip")
    val_size: int = option(10_000, "validation instances (seed 4321, greedy decoding)")
    val_reference: str | None = option(None, "optional .npz with a 'costs' array of reference "
                                       "costs for the validation set, to log eval/gap")
    bl_eval_size: int = option(10_000, "rollout baseline: instances in the t-test evaluation set")
    bl_alpha: float = option(0.05, "rollout baseline: significance level of the t-test")
    eval_batch_size: int = option(1000, "instances per chunk when decoding without gradients")
    init_from: str | None = option(None, "start from these model weights (e.g. a smaller size's); "
                                          "--resume continues from the run's own checkpoint")
    max_minutes: float = option(0.0, "stop after this much training wall-clock (0: no limit); "
                                "the epoch in progress is cut short, evaluated and saved")
    seed: int = option(1, "random seed (0 is a seed)")
    device: str = option("cpu", "torch device, e.g. cpu or cuda")
    threads: int = option(0, "torch CPU threads (0: torch's default)")
    run_dir: str = option("", "folder for TensorBoard logs, checkpoint.pt (last epoch) and "
                           "best.pt (lowest validation cost) ('': runs/<problem><size>)")
    resume: bool = option(False, "continue from run_dir/checkpoint.pt")

    def __post_init__(self) -> None:
        require(self.size >= 3, "size", ">= 3", self.size)
        require(self.starts >= 0, "starts", ">= 0", self.starts)
        require(self.starts <= self.size, "starts", f"<= size ({self.size})", self.starts)
        require(self.first == "forced" or self.baseline == "shared", "first",
                "'forced' unless --baseline shared (only the shared baseline has starts)",
                self.first)
        require(self.leader >= 1, "leader", ">= 1", self.leader)
        require(self.leader == 1 or self.baseline == "shared", "leader",
                "1 unless --baseline shared (only the shared baseline has a best rollout)",
                self.leader)
        require(self.augment in (1, 2, 4, 8), "augment", "1, 2, 4 or 8", self.augment)
        require(self.augment == 1 or self.baseline == "shared", "augment",
                "1 unless --baseline shared (the copies share the multi-start baseline)",
                self.augment)
        for name in ("batch_size", "epochs", "val_size", "bl_eval_size", "eval_batch_size"):
            require(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))
        require(self.epoch_size >= self.batch_size, "epoch_size", ">= batch_size", self.epoch_size)
        require(self.lr > 0, "lr", "> 0", self.lr)
        require(0 < self.lr_decay <= 1, "lr_decay", "in (0, 1]", self.lr_decay)
        require(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)
        require(self.max_grad_norm > 0, "max_grad_norm", "> 0", self.max_grad_norm)
        require(0 < self.bl_alpha < 1, "bl_alpha", "in (0, 1)", self.bl_alpha)
        require(self.seed >= 0, "seed", ">= 0", self.seed)
        require(self.threads >= 0, "threads", ">= 0", self.threads)
        require(self.max_minutes >= 0, "max_minutes", ">= 0", self.max_minutes)

    @property
    def problem_name(self) -> str:
        """The registry name: ``op_<prize>`` for OP, else the problem."""
        return f"op_{self.prize}" if self.problem == "op" else self.problem


RUNTIME_FIELDS = frozenset(
    {"epochs", "resume", "threads", "device", "eval_batch_size", "max_minutes"})
"""Config fields that may change on --resume without changing the run."""


def to_device(inst: Instance, device: str | torch.device) -> Instance:
    return {k: v.to(device) for k, v in inst.items()}


def make_baseline(cfg: TrainConfig, model: AttentionModel) -> Baseline:
    """Baseline name -> constructor: one table, no if/elif chain."""
    problem = model.problem

    def greedy_cost(policy: nn.Module, inst: Instance) -> torch.Tensor:
        return problem.cost(inst, policy.rollout(inst).actions)[:, 0]

    def eval_set(size: int, seed: int) -> Instance:
        gen = torch.Generator().manual_seed(seed)
        return to_device(problem.generate(size, cfg.size, generator=gen), cfg.device)

    table = {
        "rollout": lambda: GreedyRolloutBaseline(
            model, greedy_cost, eval_set, eval_size=cfg.bl_eval_size,
            batch_size=cfg.eval_batch_size, alpha=cfg.bl_alpha, seed=cfg.seed + 10_000),
        "shared": SharedBaseline,
        "exponential": lambda: ExponentialBaseline(beta=0.8),
        "critic": lambda: CriticBaseline(AttentionCritic(problem, model.cfg).to(cfg.device)),
        "none": NoBaseline,
    }
    return table[cfg.baseline]()


def model_state(path: str | Path) -> dict[str, Any]:
    """Model weights from a training checkpoint or an exported solver file."""
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def init_weights(model: torch.nn.Module, path: str | Path) -> list[str]:
    """Copy the weights of ``path`` whose names and shapes match ``model``.

    Related problems share most of the network (CVRP -> SDVRP adds a demand
    projection, OP-dist -> OP-const changes nothing), so a warm start copies what
    fits and leaves the rest at its fresh initialisation. Returns the names left
    fresh; a shared name with another shape means another width or depth, an error.
    """
    source = model_state(path)
    own = model.state_dict()
    clash = [k for k, v in source.items() if k in own and own[k].shape != v.shape]
    if clash:
        raise ValueError(
            f"init_from: {path} has other shapes for {', '.join(clash[:3])}"
            f"{' ...' if len(clash) > 3 else ''}; match --embed-dim and --layers to it")
    own.update({k: v for k, v in source.items() if k in own})
    model.load_state_dict(own)
    return sorted(set(own) - set(source))


def train(cfg: TrainConfig) -> dict[str, float]:
    """Train, log and checkpoint every epoch; returns the last validation metrics."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    problem = make_problem(cfg.problem_name)
    model_cfg = ModelConfig(embed_dim=cfg.embed_dim, layers=cfg.layers, ff_dim=4 * cfg.embed_dim)
    model = AttentionModel(problem, model_cfg).to(cfg.device)
    if cfg.init_from and not cfg.resume:
        fresh = init_weights(model, cfg.init_from)
        if fresh:
            print(f"init_from: left at fresh initialisation: {', '.join(fresh)}")
    baseline = make_baseline(cfg, model)
    params = list(model.parameters())
    if isinstance(baseline, CriticBaseline):
        params += list(baseline.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: cfg.lr_decay**e)
    run_dir = Path(cfg.run_dir or f"runs/{cfg.problem_name}{cfg.size}")
    ckpt_path = run_dir / "checkpoint.pt"
    start_epoch, seen, wall, best = 0, 0, 0.0, math.inf
    if cfg.resume:
        state = load_checkpoint(ckpt_path, map_location=cfg.device)
        if cfg.init_from is None:
            # The weights come from the checkpoint; the run keeps the origin it recorded.
            cfg = dataclasses.replace(cfg, init_from=state["config"].get("init_from"))
        current = dataclasses.asdict(cfg)
        # Fields added after the checkpoint was written count as their defaults.
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        runtime = {k: v for k, v in current.items() if k in RUNTIME_FIELDS}
        saved = {**defaults, **state["config"], **runtime}
        changed = [f"--{k.replace('_', '-')} {saved[k]!r} (given {current[k]!r})"
                   for k in current if saved.get(k) != current[k]]
        if changed:
            raise ValueError(f"--resume: {ckpt_path} was trained with {', '.join(changed)}; "
                             f"only {sorted(RUNTIME_FIELDS)} may change")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        baseline.load_state_dict(state["baseline"])
        start_epoch, seen, wall = state["epoch"] + 1, state["instances_seen"], state["wall_time"]
        best = state.get("best_val_cost", math.inf)
    val = paper_dataset(cfg.problem_name, cfg.val_size, cfg.size, VALIDATION_SEED)
    val = to_device(val, cfg.device)
    reference = None
    if cfg.val_reference:
        with np.load(cfg.val_reference) as data:
            reference = torch.from_numpy(data["costs"])
    starts = (cfg.starts or cfg.size) if cfg.baseline == "shared" else 0
    logger = Logger(run_dir, config=dataclasses.asdict(cfg))
    metrics: dict[str, float] = {}
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        tic = time.perf_counter()
        for i in progress(range(cfg.epoch_size // cfg.batch_size), desc=f"epoch {epoch}"):
            inst = to_device(problem.generate(cfg.batch_size, cfg.size), cfg.device)
            inst = augment(inst, problem.coord_keys, cfg.augment)  # (A * B, ...)
            first = problem.starts(inst, starts) if starts and cfg.first != "sampled" else None
            out = model.rollout(inst, k=max(starts, 1), greedy=False, first=first,
                                score_first=cfg.first == "scored")
            cost = problem.cost(inst, out.actions)  # (A * B, k)
            # With --augment, one row holds every rollout of an instance over all its copies.
            cost = by_instance(cost, cfg.augment) if starts else cost[:, 0]
            value, aux_loss = baseline.eval(inst, cost)
            advantage = value.view_as(cost) - cost
            if starts:
                if cfg.leader != 1:
                    advantage = leader_reward(advantage, cfg.leader)
                advantage = from_instance(advantage, cfg.augment)
            loss, _ = reinforce_loss(out.logp.flatten(), advantage.flatten())
            first_stats: dict[str, float] = {}
            if out.first_logp is not None:  # the first decision, judged over every start
                choice, stats = all_action_loss(out.first_logp.gather(1, first), advantage)
                aux_loss = aux_loss + choice
                first_stats = {"loss/first": stats["loss/choice"],
                               "train/first_entropy": stats["choice_entropy"]}
            optimizer.zero_grad()
            (loss + aux_loss).backward()
            grad_norm = nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            seen += cfg.batch_size
            out_of_time = cfg.max_minutes and wall + time.perf_counter() - tic > 60 * cfg.max_minutes
            if out_of_time:
                break
            if i % 10 == 0:
                logger.log({"train/cost": float(cost.mean()), "baseline/value": float(value.mean()),
                            "train/grad_norm": float(grad_norm), "loss/policy": float(loss.detach()),
                            "train/lr": optimizer.param_groups[0]["lr"], **first_stats}, seen)
        wall += time.perf_counter() - tic
        scheduler.step()
        metrics = dict(baseline.epoch_callback(model, epoch))
        _, val_cost = decode(model, val, "greedy", batch_size=cfg.eval_batch_size)
        metrics["eval/cost"] = float(val_cost.mean())
        if reference is not None:
            metrics["eval/gap"] = float(val_cost.mean().cpu() / reference[: cfg.val_size].mean() - 1)
        metrics["time/instances_per_s"] = (i + 1) * cfg.batch_size / (time.perf_counter() - tic)
        logger.log(metrics, seen)
        print(f"epoch {epoch}: val greedy cost {metrics['eval/cost']:.4f}"
              + (f" (gap {100 * metrics['eval/gap']:.2f} %)" if "eval/gap" in metrics else "")
              + f", {seen} instances seen, {wall / 60:.1f} min training")
        best = min(best, metrics["eval/cost"])
        checkpoint = {
            "problem": cfg.problem_name, "size": cfg.size, "model_config": dataclasses.asdict(model.cfg),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "baseline": baseline.state_dict(),
            "epoch": epoch, "instances_seen": seen, "wall_time": wall, "best_val_cost": best,
            "config": dataclasses.asdict(cfg),
        }
        save_checkpoint(ckpt_path, checkpoint)
        if best == metrics["eval/cost"]:  # validation cost fluctuates; keep the best epoch too
            save_checkpoint(run_dir / "best.pt", checkpoint)
        if cfg.max_minutes and wall > 60 * cfg.max_minutes:
            break
    logger.close()
    return metrics


if __name__ == "__main__":
    train(parse_config(TrainConfig))
