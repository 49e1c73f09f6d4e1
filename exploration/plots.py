"""Learning curves as PNG from the TensorBoard logs of :func:`exploration.agent.train`.

    python -m exploration.plots runs/ALE_Breakout-v5_ppo_seed0 --out docs/img/exploration_breakout.png
    python -m exploration.plots runs/a runs/b --tag charts/rooms_visited --out rooms.png

The x axis is ``charts/frames`` (emulator frames on Atari, steps elsewhere);
the legend gives each run's frames and training wall time (``time/elapsed_hours``,
summed over resumed runs). Nothing is smoothed except by ``--smooth``, a
trailing moving average over logged points.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

__all__ = ["load_scalars", "plot_runs"]


def load_scalars(run_dir: str | Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of ``tag`` over every event file in ``run_dir``, sorted by step.

    A resumed run appends new event files; a step logged twice (a crash after
    logging but before the checkpoint) keeps its last value.
    """
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        raise ValueError(f"{run_dir} has no scalar {tag!r}; it has {sorted(acc.Tags()['scalars'])}")
    by_step = {e.step: e.value for e in acc.Scalars(tag)}
    steps = np.array(sorted(by_step))
    return steps, np.array([by_step[s] for s in steps])


def plot_runs(
    run_dirs: Sequence[str | Path], out: str | Path, tag: str = "charts/episode_return",
    labels: Sequence[str] | None = None, smooth: int = 1, title: str | None = None,
    max_frames: float | None = None,
) -> Path:
    """Plot ``tag`` against frames for each run into the PNG ``out`` (up to ``max_frames``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"labels must have one entry per run ({len(run_dirs)}), got {len(labels)}")
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}")
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, run in enumerate(run_dirs):
        steps, values = load_scalars(run, tag)
        frame_steps, frames = load_scalars(run, "charts/frames")
        hour_steps, hours = load_scalars(run, "time/elapsed_hours")
        x = np.interp(steps, frame_steps, frames)
        if smooth > 1:
            kernel = np.ones(smooth) / smooth
            values = np.convolve(np.pad(values, (smooth - 1, 0), mode="edge"), kernel, "valid")
        if max_frames is not None:
            x, values = x[x <= max_frames], values[x <= max_frames]
            last_step = frame_steps[frames <= max_frames][-1]
            frames, hours = frames[frames <= max_frames], hours[hour_steps <= last_step]
        name = labels[i] if labels else Path(run).name
        wall = f"{hours[-1]:.1f} h" if hours[-1] >= 1 else f"{60 * hours[-1]:.1f} min"
        ax.plot(x, values, label=f"{name} ({frames[-1]:,.0f} frames, {wall})")
    ax.set_xlabel("frames (agent steps outside Atari)")
    ax.set_ylabel(tag)
    ax.set_title(title or tag)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (runs/<name>)")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--tag", default="charts/episode_return", help="scalar to plot")
    parser.add_argument("--labels", nargs="*", default=None, help="legend names, one per run")
    parser.add_argument("--smooth", type=int, default=1, help="trailing moving average over points")
    parser.add_argument("--title", default=None, help="plot title (default: the tag)")
    parser.add_argument("--max-frames", type=float, default=None, help="plot only up to this many frames")
    args = parser.parse_args(argv)
    path = plot_runs(args.runs, args.out, args.tag, args.labels, args.smooth, args.title,
                     args.max_frames)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
