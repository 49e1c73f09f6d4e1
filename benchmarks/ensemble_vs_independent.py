"""Ensemble (mixture targets) against independent C51 agents, same total environment steps.

    python benchmarks/ensemble_vs_independent.py --env CartPole-v1 --seeds 0 1 2 3 4
    python benchmarks/ensemble_vs_independent.py --report      # tables and PNGs from saved runs

Lindenberg et al. (2020) claim three things for the ensemble over independently
trained agents: more robust early learning, stronger individual members, better
efficiency per sample. Each (environment, seed) trains both arms with ``k``
members and the same ``--total-steps`` (environment steps over all members);
every ``--evals``-th of the budget each member is evaluated greedily alone, and
so is the mixture of the members' distributions. Runs are saved one per file
under ``--out`` (existing ones are skipped, so seeds can be run in several
calls). ``--report`` prints, per environment and arm, means over seeds with 95 %
t-intervals (and of the paired per-seed differences, since both arms of a seed
start from the same networks and environment seeds) of: the area under the mean-member learning curve (the average
return over the evaluations), the same over the first half of the budget
(early learning), the worst member's area (robustness), the final mean return
per member and of the ensemble acting on the mixture; and draws the learning
curves to ``docs/img/distributional_<env>.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from distributional.train import TrainConfig, train

ARMS = ("ensemble", "independent")
BUDGETS = {"CartPole-v1": 25_000, "Acrobot-v1": 50_000, "MinAtar/Breakout-v1": 50_000}
# Per-member settings scaled to a budget of a few thousand steps per member.
SETTINGS = {
    "CartPole-v1": dict(learning_starts=500, eps_decay_steps=2_000),
    "Acrobot-v1": dict(learning_starts=500, eps_decay_steps=3_000),
    "MinAtar/Breakout-v1": dict(learning_starts=500, eps_decay_steps=5_000),
}


def run_one(env_id: str, arm: str, seed: int, members: int, total: int, evals: int,
            episodes: int) -> dict:
    """Train one arm; return its evaluation curves (environment step -> returns)."""
    with tempfile.TemporaryDirectory() as tmp:
        train(TrainConfig(env_id=env_id, agent=arm, members=members, total_steps=total, seed=seed,
                          eval_every=total // evals, eval_episodes=episodes, checkpoint_every=0,
                          log_every=total // 10, run_dir=tmp, **SETTINGS.get(env_id, {})))
        curves: dict[str, dict[int, float]] = defaultdict(dict)
        with open(Path(tmp) / "progress.csv") as f:
            for row in csv.DictReader(f):
                if row["tag"].startswith("eval/"):
                    curves[row["tag"][5:]][int(row["step"])] = float(row["value"])
    steps = sorted(curves["return_member_mean"])
    return {"steps": steps, **{tag: [c[s] for s in steps] for tag, c in curves.items()}}


def interval(values: list[float]) -> str:
    """``mean ± half-width`` of the 95 % t-interval over seeds."""
    x = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else 0
    return f"{x.mean():.1f} ± {half:.1f}"


def summarise(run: dict, members: int) -> dict[str, float]:
    steps = np.asarray(run["steps"], dtype=float)
    per_member = np.array([run[f"return_member{i}"] for i in range(members)])
    mean_curve = per_member.mean(0)
    early = steps <= steps[-1] / 2
    return {
        "auc": float(mean_curve.mean()),
        "early_auc": float(mean_curve[early].mean()),
        "worst_member_auc": float(per_member.mean(1).min()),
        "final_member": float(mean_curve[-1]),
        "final_ensemble": float(run["return_ensemble"][-1]),
    }


def report(out: Path, img_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for env_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        seeds = sorted(set.intersection(*(
            {int(p.stem.split("seed")[1]) for p in env_dir.glob(f"{arm}_seed*.json")}
            for arm in ARMS)))
        if not seeds:
            continue
        runs = {arm: [json.loads((env_dir / f"{arm}_seed{s}.json").read_text()) for s in seeds]
                for arm in ARMS}
        env_id, members = runs["ensemble"][0]["env_id"], runs["ensemble"][0]["members"]
        print(f"\n{env_id}: k = {members}, {runs['ensemble'][0]['total_steps']} environment "
              f"steps per arm, seeds {[r['seed'] for r in runs['ensemble']]}")
        keys = ("auc", "early_auc", "worst_member_auc", "final_member", "final_ensemble")
        print("| arm | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
        fig, ax = plt.subplots(figsize=(6, 4))
        rows = {arm: [summarise(r, members) for r in runs[arm]] for arm in ARMS}
        for arm in ARMS:
            print(f"| {arm} | " + " | ".join(interval([r[k] for r in rows[arm]]) for k in keys) + " |")
        # Both arms of a seed start from the same networks and environment seeds: pair them.
        diffs = {k: [e[k] - i[k] for e, i in zip(rows["ensemble"], rows["independent"], strict=True)]
                 for k in keys}
        print("| ensemble - independent (paired) | "
              + " | ".join(f"{interval(d)} ({sum(x > 0 for x in d)}/{len(d)} > 0)"
                           for d in diffs.values()) + " |")
        for arm, color in zip(ARMS, ("C0", "C1"), strict=True):
            steps = np.asarray(runs[arm][0]["steps"])
            for tag, style, label in (("return_member_mean", "-", "mean member"),
                                      ("return_ensemble", "--", "mixture")):
                curve = np.array([r[tag] for r in runs[arm]])
                mean = curve.mean(0)
                half = stats.t.ppf(0.975, len(curve) - 1) * curve.std(0, ddof=1) / np.sqrt(len(curve))
                ax.plot(steps, mean, style, color=color, label=f"{arm}: {label}")
                if style == "-":
                    ax.fill_between(steps, mean - half, mean + half, color=color, alpha=0.2)
        ax.set_xlabel("environment steps (all members)")
        ax.set_ylabel("greedy evaluation return")
        ax.set_title(f"{env_id}: k = {members}, {len(runs['ensemble'])} seeds (95 % CI)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        img_dir.mkdir(parents=True, exist_ok=True)
        path = img_dir / f"distributional_{env_id.replace('/', '_').replace('-', '_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        print(f"learning curves: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="CartPole-v1", help="gymnasium id")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--members", type=int, default=5, help="k, members per arm")
    parser.add_argument("--total-steps", type=int, default=None,
                        help=f"environment steps per arm (default per env: {BUDGETS})")
    parser.add_argument("--evals", type=int, default=10, help="evaluations over the budget")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation")
    parser.add_argument("--out", default="runs/ensemble_vs_independent", help="saved runs")
    parser.add_argument("--img-dir", default="docs/img", help="where --report draws")
    parser.add_argument("--report", action="store_true", help="only summarise saved runs")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.report:
        torch.set_num_threads(1)
        total = args.total_steps or BUDGETS.get(args.env, 25_000)
        env_dir = out / args.env.replace("/", "_")
        env_dir.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            for arm in ARMS:
                path = env_dir / f"{arm}_seed{seed}.json"
                if path.exists():
                    continue
                run = run_one(args.env, arm, seed, args.members, total, args.evals,
                              args.eval_episodes)
                run.update(env_id=args.env, arm=arm, seed=seed, members=args.members,
                           total_steps=total)
                path.write_text(json.dumps(run))
                print(f"{args.env} {arm} seed {seed}: final mean member "
                      f"{run['return_member_mean'][-1]:.1f}, mixture {run['return_ensemble'][-1]:.1f}",
                      flush=True)
    report(out, Path(args.img_dir))


if __name__ == "__main__":
    main()
