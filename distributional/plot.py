"""Draw predicted return distributions: one panel per policy, one curve per action."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from distributional.categorical import Support

__all__ = ["plot_distributions"]


def plot_distributions(
    support: Support,
    probs: Mapping[str, Tensor],
    path: str | os.PathLike[str],
    action_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Save a PNG of the return distribution of each action for one observation.

    Args:
        support: the atoms the distributions live on.
        probs: panel name (``"member 0"``, ``"ensemble"``, ...) -> ``(n_actions, n_atoms)``
            probabilities, e.g. ``agent.probs(obs[None])[0]``.
        path: where the PNG goes (folders are created).
        action_names: legend labels, one per action (default ``action 0``, ...).
        title: figure title.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not probs:
        raise ValueError("probs must name at least one distribution to draw")
    shapes = {tuple(p.shape) for p in probs.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"probs must all have shape (n_actions, n_atoms), got {sorted(shapes)}")
    n_actions, n_atoms = next(iter(shapes))
    if n_atoms != support.n_atoms:
        raise ValueError(f"probs have {n_atoms} atoms, support has {support.n_atoms}")
    names = list(action_names) if action_names is not None else [
        f"action {a}" for a in range(n_actions)]
    if len(names) != n_actions:
        raise ValueError(f"action_names must have {n_actions} entries, got {len(names)}")
    atoms = support.atoms.cpu().numpy()
    fig, axes = plt.subplots(1, len(probs), figsize=(max(4 * len(probs), 6), 3.4), sharey=True,
                             squeeze=False)
    for ax, (panel, p) in zip(axes[0], probs.items(), strict=True):
        p = p.detach().cpu().to(torch.float64)
        means = support.mean(p.to(support.atoms.dtype).to(support.atoms.device)).cpu()
        for a in range(n_actions):
            ax.step(atoms, p[a].numpy(), where="mid",
                    label=f"{names[a]} (mean {float(means[a]):.1f})")
        ax.set_title(panel)
        ax.set_xlabel("return")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("probability")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
