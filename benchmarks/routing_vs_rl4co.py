"""Our attention model against rl4co's, side by side in one run, on the same batches.

    python benchmarks/routing_vs_rl4co.py                      # throughput (a few minutes)
    python benchmarks/routing_vs_rl4co.py --budget-minutes 30  # train both for 30 min each
    python benchmarks/routing_vs_rl4co.py --budget-minutes 30 --parallel  # at once, 1 thread each

Throughput (same model size: d=128, 3 layers, 8 heads, FF 512, batch norm):
one REINFORCE step with a greedy-rollout baseline on TSP20 at batch 512
(sampled rollout with gradients, greedy baseline rollout, backward, Adam), one
POMO step on TSP20 at batch 64 (20 sampled rollouts per instance, one from each
start, shared baseline, backward, Adam), and greedy decoding of 1,000 TSP20 and
TSP100 instances. Prints instances per second and the ratios (targets:
training >= 3x, decoding >= 2x), and for each the arithmetic both do (matrix
products and attention, counted by op) and the rate they do it at, next to this
machine's float32 matrix-product rate: our arithmetic at that full rate is the
most our code could reach, so the printed ceiling says which targets a faster
implementation of the same model could still meet.

With ``--budget-minutes M``: trains rl4co's POMO with its defaults and ours
(multi-start with the shared baseline) from scratch on TSP20 for M minutes of
wall-clock each, then evaluates both on the same 1,000 test instances (seed
1234) against LKH-3: greedy and multi-start gaps (target: ours lower on both).
With ``--parallel`` both train at the same time, one thread each (rl4co in a
child process), so both see the same machine load in half the wall-clock.
Both train POMO-style (20 rollouts per instance, one from each start; rl4co's
default batch of 512 instances, ours 64), so the instances each gets through in
the same minutes are also an end-to-end training throughput, the whole training
loop included (rl4co: Lightning, its default bf16-mixed precision, validation
each epoch; ours: validation each epoch); printed as a ratio next to the costs.

rl4co is not a dependency of this project; install it beside torch 2.13 in a
separate environment together with this package, e.g.
``python -m venv /tmp/v && /tmp/v/bin/pip install torch==2.13.0 rl4co==0.7.0 -e .``
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timing import count_flops, matmul_rate, median_seconds

from problems import TSP
from problems.bench import reference_costs
from problems.data import TEST_SEED, paper_dataset
from problems.decoding import decode
from problems.model import AttentionModel
from problems.solver import load_solver
from problems.train import TrainConfig, train
from rlcore import reinforce_loss

try:
    from rl4co.envs import TSPEnv
    from rl4co.models import AttentionModelPolicy
    from rl4co.utils.ops import unbatchify
    from tensordict import TensorDict
except ImportError as err:  # pragma: no cover - exercised only without rl4co
    raise SystemExit(f"rl4co is not installed ({err}); see this script's docstring") from None


def rl4co_batch(env: TSPEnv, locs: torch.Tensor) -> TensorDict:
    return env.reset(TensorDict({"locs": locs}, batch_size=[locs.shape[0]]))


def update(opt: torch.optim.Optimizer, model: torch.nn.Module, loss: torch.Tensor) -> None:
    """One Adam step with the gradient norm clipped at 1, as both libraries train."""
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def compare(ours: Callable[[], object], theirs: Callable[[], object], repeats: int,
            peak: float) -> tuple[float, float]:
    """Median seconds of both, after printing the arithmetic each does (matrix products and
    attention, counted over one extra call) and the rate it runs at. That bounds the ratio: our
    arithmetic done at the machine's full matrix-product rate ``peak`` is as fast as ours can get."""
    flops = count_flops(ours), count_flops(theirs)
    t_ours, t_theirs = median_seconds(ours, repeats), median_seconds(theirs, repeats)
    print(f"  arithmetic: ours {flops[0] / 1e9:.2f} GFLOP at {flops[0] / t_ours / 1e9:.0f} GFLOP/s, "
          f"rl4co {flops[1] / 1e9:.2f} GFLOP at {flops[1] / t_theirs / 1e9:.0f} GFLOP/s; "
          f"ours at the full {peak / 1e9:.0f} GFLOP/s would be {peak * t_theirs / flops[0]:.2f}x")
    return t_ours, t_theirs


def throughput(repeats: int) -> None:
    torch.manual_seed(0)
    ours = AttentionModel(TSP())
    env20 = TSPEnv(generator_params={"num_loc": 20})
    theirs = AttentionModelPolicy(env_name="tsp", embed_dim=128, num_encoder_layers=3,
                                  num_heads=8, feedforward_hidden=512, normalization="batch")
    n_ours = sum(p.numel() for p in ours.parameters())
    n_theirs = sum(p.numel() for p in theirs.parameters())
    print(f"parameters: ours {n_ours:,}, rl4co {n_theirs:,}")
    peak = matmul_rate()
    print(f"this machine's float32 matrix-product rate: {peak / 1e9:.0f} GFLOP/s "
          f"({torch.get_num_threads()} threads)")
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-4)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-4)
    frozen_ours = AttentionModel(TSP()).eval()
    frozen_theirs = AttentionModelPolicy(env_name="tsp", embed_dim=128, num_encoder_layers=3,
                                         num_heads=8, feedforward_hidden=512).eval()
    locs = torch.rand(512, 20, 2)
    problem = TSP()

    def step_ours() -> None:
        inst = {"locs": locs}
        out = ours.rollout(inst, greedy=False)
        cost = problem.cost(inst, out.actions)[:, 0]
        with torch.no_grad():
            base = problem.cost(inst, frozen_ours.rollout(inst).actions)[:, 0]
        loss, _ = reinforce_loss(out.logp[:, 0], base - cost)
        update(opt_ours, ours, loss)

    def step_theirs() -> None:
        out = theirs(rl4co_batch(env20, locs), env20, phase="train", decode_type="sampling")
        with torch.no_grad():
            base = frozen_theirs(rl4co_batch(env20, locs), env20, decode_type="greedy")["reward"]
        # rl4co's rewards are negative costs: advantage = reward - baseline reward
        loss = -((out["reward"] - base) * out["log_likelihood"]).mean()
        update(opt_theirs, theirs, loss)

    pomo_locs = locs[:64]

    def pomo_ours() -> None:
        inst = {"locs": pomo_locs}
        out = ours.rollout(inst, k=20, greedy=False, first=problem.starts(inst, 20))
        cost = problem.cost(inst, out.actions)
        loss, _ = reinforce_loss(out.logp.flatten(), (cost.mean(1, keepdim=True) - cost).flatten())
        update(opt_ours, ours, loss)

    def pomo_theirs() -> None:
        out = theirs(rl4co_batch(env20, pomo_locs), env20, phase="train",
                     decode_type="multistart_sampling", num_starts=20)
        reward = unbatchify(out["reward"], 20)  # (B, starts)
        advantage = reward - reward.mean(dim=1, keepdim=True)
        loss = -(advantage * unbatchify(out["log_likelihood"], 20)).mean()
        update(opt_theirs, theirs, loss)

    for title, batch, step in (
        ("greedy-rollout baseline, batch 512", 512, (step_ours, step_theirs)),
        ("POMO: 20 starts, shared baseline, batch 64", 64, (pomo_ours, pomo_theirs)),
    ):
        print(f"training step, TSP20, {title} (median of {repeats}):")
        t_ours, t_theirs = compare(step[0], step[1], repeats, peak)
        print(f"  ours   {t_ours:6.2f} s  ({batch / t_ours:7.1f} instances/s)")
        print(f"  rl4co  {t_theirs:6.2f} s  ({batch / t_theirs:7.1f} instances/s)")
        print(f"  ratio  {t_theirs / t_ours:6.2f}x   (target >= 3x)")
    ours.eval()
    theirs.eval()
    for n in (20, 100):
        test = paper_dataset("tsp", 1000, n, TEST_SEED)["locs"]
        env = TSPEnv(generator_params={"num_loc": n})

        def dec_ours(test=test) -> None:
            decode(ours, {"locs": test}, "greedy", batch_size=1000)

        def dec_theirs(test=test, env=env) -> None:
            with torch.no_grad():
                theirs(rl4co_batch(env, test), env, decode_type="greedy")

        print(f"greedy decoding of 1,000 TSP{n} instances (median of {repeats}):")
        g_ours, g_theirs = compare(dec_ours, dec_theirs, repeats, peak)
        print(f"  ours {g_ours:6.2f} s, rl4co {g_theirs:6.2f} s, ratio {g_theirs / g_ours:5.2f}x"
              "   (target >= 2x)")


def rl4co_budget(
    minutes: float, coords: torch.Tensor, threads: int, out: Queue | None = None
) -> dict[str, Any]:
    """Train rl4co's POMO (its defaults) for ``minutes``; greedy and multi-start costs."""
    from rl4co.models import POMO
    from rl4co.utils import RL4COTrainer

    if threads:
        torch.set_num_threads(threads)
    env = TSPEnv(generator_params={"num_loc": 20})
    model = POMO(env)
    trainer = RL4COTrainer(max_time={"minutes": minutes}, max_epochs=10_000, accelerator="cpu",
                           logger=False, enable_checkpointing=False, enable_progress_bar=False)
    tic = time.perf_counter()
    trainer.fit(model)
    result = {"minutes": (time.perf_counter() - tic) / 60,
              "instances": trainer.global_step * model.data_cfg["batch_size"]}
    policy = model.policy.eval()
    with torch.no_grad():
        td = rl4co_batch(env, coords)
        result["greedy"] = (-policy(td.clone(), env, decode_type="greedy")["reward"]).numpy()
        multi = -policy(td.clone(), env, decode_type="multistart_greedy", num_starts=20)["reward"]
        # rl4co batches the starts start-major: (num_starts * B,)
        result["multistart"] = multi.view(20, -1).min(0).values.numpy()
    if out is not None:
        out.put(result)
    return result


def ours_budget(minutes: float, coords: torch.Tensor, threads: int, lr: float) -> dict[str, Any]:
    """Train ours (multi-start, shared baseline) for ``minutes``; greedy and multi-start costs."""
    run_dir = tempfile.mkdtemp(prefix="ours_budget_")
    cfg = TrainConfig(size=20, baseline="shared", batch_size=64, epoch_size=64_000, epochs=10_000,
                      lr=lr, weight_decay=1e-6, val_size=1000, max_minutes=minutes,
                      run_dir=run_dir, threads=threads)
    tic = time.perf_counter()
    train(cfg)
    result = {"minutes": (time.perf_counter() - tic) / 60}
    ckpt = Path(run_dir) / "checkpoint.pt"
    result["instances"] = torch.load(ckpt, weights_only=False)["instances_seen"]
    solver = load_solver(ckpt)
    np_coords = coords.double().numpy()
    result["greedy"] = solver.solve(np_coords, decode="greedy").costs
    result["multistart"] = solver.solve(np_coords, decode="multistart").costs
    return result


def budget(minutes: float, num: int, parallel: bool, lr: float) -> None:
    inst = paper_dataset("tsp", num, 20, TEST_SEED)
    coords = inst["locs"]
    found = reference_costs("tsp", inst, Path("benchmarks/reference/tsp20_seed1234_lkh-3.npz"))
    if found is None:
        raise SystemExit("LKH-3 (elkai) is needed for the reference costs")
    ref = found[1]
    if parallel:  # both at once, one thread each: the same machine load for both
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=rl4co_budget, args=(minutes, coords, 1, queue))
        child.start()
        ours = ours_budget(minutes, coords, 1, lr)
        theirs = queue.get()
        child.join()
    else:
        theirs = rl4co_budget(minutes, coords, 0)
        ours = ours_budget(minutes, coords, 0, lr)

    def gap(c) -> str:
        return f"{100 * (float(np.mean(np.asarray(c))) / ref.mean() - 1):.2f} %"

    how = "at the same time, one thread each" if parallel else "one after the other"
    print(f"TSP20, {num} test instances, gap to LKH-3, after {minutes:g} min of training ({how})")
    for name, r in (("rl4co POMO (defaults)", theirs), (f"ours (shared baseline, lr {lr:g})", ours)):
        print(f"  {name}: {r['instances']:,} instances in {r['minutes']:.1f} min "
              f"({r['instances'] / (60 * r['minutes']):.0f}/s); "
              f"greedy {gap(r['greedy'])}, multistart {gap(r['multistart'])}")
    # The same work per instance (20 rollouts), each through its own training loop.
    rate = (ours["instances"] / ours["minutes"]) / (theirs["instances"] / theirs["minutes"])
    print(f"  end-to-end training throughput (each library's training entry, its defaults): "
          f"{rate:.2f}x rl4co (target >= 3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (median)")
    parser.add_argument("--budget-minutes", type=float, default=0.0,
                        help="train both from scratch for this long instead of timing steps")
    parser.add_argument("--num", type=int, default=1000, help="test instances for --budget-minutes")
    parser.add_argument("--parallel", action="store_true",
                        help="--budget-minutes: train both at the same time, one thread each")
    parser.add_argument("--lr", type=float, default=1e-4, help="--budget-minutes: our learning rate")
    args = parser.parse_args()
    if args.budget_minutes > 0:
        budget(args.budget_minutes, args.num, args.parallel, args.lr)
    else:
        throughput(args.repeats)


if __name__ == "__main__":
    main()
