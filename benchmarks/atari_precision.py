"""Does bf16 autocast change how PPO learns on Atari? Compare runs' logged returns by precision.

    python benchmarks/atari_precision.py --fp32 runs/a runs/b --bf16 runs/c runs/d \
        --frames 2000000 [--window 500000] [--out curves.png]

Reads each run's TensorBoard logs (``charts/episode_return``, ``charts/frames``)
up to ``--frames`` and prints per run the mean of the logged episode returns
over all of it (an area under the learning curve) and over the last
``--window`` frames; then each precision's mean over its runs and the
bf16 - fp32 differences. Speed is ``benchmarks/atari_vs_sb3.py``'s business. Nothing is trained here;
the runs come from ``examples/train_atari.py --precision fp32|bf16`` with
otherwise equal settings (commands in docs/exploration.md).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from exploration.plots import load_scalars, plot_runs


def summarise(run: str, frames: float, window: float) -> dict[str, float]:
    steps, returns = load_scalars(run, "charts/episode_return")
    frame_steps, frame_counts = load_scalars(run, "charts/frames")
    x = np.interp(steps, frame_steps, frame_counts)
    if x.size == 0 or x[-1] < frames:
        raise SystemExit(f"{run} reaches {x[-1] if x.size else 0:,.0f} frames, fewer than --frames {frames:,.0f}")
    keep = x <= frames
    last = keep & (x > frames - window)
    return {"all": float(returns[keep].mean()), "last": float(returns[last].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fp32", nargs="+", required=True, help="run folders trained in float32")
    parser.add_argument("--bf16", nargs="+", required=True, help="run folders trained with bf16 autocast")
    parser.add_argument("--frames", type=float, required=True, help="compare up to this many frames")
    parser.add_argument("--window", type=float, default=500_000, help="frames of the final window")
    parser.add_argument("--out", default=None, help="also plot all runs' curves into this PNG")
    args = parser.parse_args()
    if not 0 < args.window <= args.frames:
        parser.error("--window must be in (0, --frames]")
    groups = {"fp32": args.fp32, "bf16": args.bf16}
    means: dict[str, dict[str, float]] = {}
    print(f"episode return up to {args.frames:,.0f} frames: mean of all logged points | "
          f"last {args.window:,.0f} frames")
    for name, runs in groups.items():
        rows = [summarise(run, args.frames, args.window) for run in runs]
        for run, row in zip(runs, rows, strict=True):
            print(f"  {name}  {Path(run).name:40s} {row['all']:7.2f} | {row['last']:7.2f}")
        means[name] = {k: statistics.mean(r[k] for r in rows) for k in ("all", "last")}
        print(f"  {name}  {'mean of ' + str(len(rows)) + ' runs':40s} {means[name]['all']:7.2f} | "
              f"{means[name]['last']:7.2f}")
    print(f"bf16 - fp32: {means['bf16']['all'] - means['fp32']['all']:+.2f} (all) | "
          f"{means['bf16']['last'] - means['fp32']['last']:+.2f} (last window)")
    if args.out:
        labels = [f"{name} {Path(run).name}" for name, runs in groups.items() for run in runs]
        path = plot_runs([r for runs in groups.values() for r in runs], args.out, labels=labels,
                         smooth=10, title="PPO: fp32 against bf16 autocast",
                         max_frames=args.frames)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
