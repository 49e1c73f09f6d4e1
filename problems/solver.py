"""Solver: a trained attention model behind a small API for users' own instances.

>>> from problems import load_solver
>>> solver = load_solver("tsp50")                 # shipped, or a path to your checkpoint
>>> res = solver.solve(coords)                    # (n, 2) or (B, n, 2), any scale
>>> res.tours, res.costs                          # (B, n) int64; (B,) in the caller's units
>>> solver.solve(coords, decode="multistart", augment=8, improve="2opt")
>>> solver.plot(coords[0], res.tours[0], "tour.png")
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from problems import decoding
from problems.heuristics import tour_lengths, two_opt
from problems.model import AttentionModel, ModelConfig
from problems.registry import make_problem

__all__ = ["Solution", "Solver", "export_solver", "load_solver", "pretrained_names"]

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
IMPROVERS = {"2opt": two_opt}
"""Name -> ``f(coords (B, n, 2), tours (B, n)) -> tours``: local search applied to model output."""


def pretrained_names() -> list[str]:
    """Names of the shipped checkpoints (``load_solver`` accepts them)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


@dataclass(frozen=True)
class Solution:
    """Solutions of a batch of instances."""

    tours: np.ndarray
    """``(B, n)`` int64 node order (a closed tour returns to ``tours[:, 0]``); B = 1 for one
    ``(n, 2)`` instance."""
    costs: np.ndarray
    """``(B,)`` float64 tour lengths in the caller's units."""
    seconds: float
    """Wall-clock time of the solve."""


def _as_coords(coords: Any) -> tuple[np.ndarray, bool]:
    """Validate user coordinates: ``(n, 2)`` or ``(B, n, 2)``, finite, n >= 3."""
    if isinstance(coords, torch.Tensor):
        coords = coords.detach().cpu().numpy()
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"coords must be a numeric array of shape (n, 2) or (B, n, 2): {err}") from None
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError(f"coords must have shape (n, 2) or (B, n, 2), got {np.shape(coords)}")
    if arr.shape[1] < 3:
        raise ValueError(f"coords must have at least 3 nodes, got {arr.shape[1]}")
    if arr.shape[0] == 0:
        raise ValueError("coords must hold at least one instance")
    if not np.isfinite(arr).all():
        raise ValueError("coords contains NaN or inf")
    return arr, single


def normalize(coords: np.ndarray) -> np.ndarray:
    """Map each instance into the unit square: shift to 0, divide by the larger extent.

    One factor for both axes keeps the geometry, so tour orders transfer back exactly.
    """
    low = coords.min(axis=1, keepdims=True)
    extent = (coords.max(axis=1, keepdims=True) - low).max(axis=2, keepdims=True)
    return (coords - low) / np.where(extent > 0, extent, 1.0)


class Solver:
    """A trained model for one problem; see the module docstring for use.

    Args:
        model: the trained policy.
        size: the number of nodes it was trained on (inputs far from it warn).
        device: where decoding runs.
    """

    def __init__(self, model: AttentionModel, size: int, device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.problem = model.problem
        self.size = size
        self.device = torch.device(device)

    def solve(
        self,
        coords: Any,
        decode: str = "greedy",
        samples: int = 128,
        augment: int = 1,
        improve: str | None = None,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> Solution:
        """Solve TSP instances.

        Args:
            coords: ``(n, 2)`` or ``(B, n, 2)`` array-like (NumPy, torch, lists), any scale;
                duplicate points are fine.
            decode: ``"greedy"``, ``"sample"`` (best of ``samples``) or ``"multistart"``
                (every node as the first node).
            samples: rollouts per instance for ``"sample"``.
            augment: 1, 2, 4 or 8 symmetric copies of each instance; the best is kept.
            improve: ``None`` or ``"2opt"``: local search on the model's tours.
            batch_size: instances per chunk (default: keeps about 10^5 rollouts in memory).
            seed: RNG seed for ``"sample"``.
        """
        if decode not in decoding.STRATEGIES:
            raise ValueError(f"decode must be one of {decoding.STRATEGIES}, got {decode!r}")
        if improve is not None and improve not in IMPROVERS:
            raise ValueError(f"improve must be None or one of {sorted(IMPROVERS)}, got {improve!r}")
        arr, _ = _as_coords(coords)
        n = arr.shape[1]
        if not self.size / 2 <= n <= self.size * 2:
            warnings.warn(f"instances have {n} nodes, far from the {self.size} this model was "
                          "trained on: expect larger gaps", stacklevel=2)
        k = {"greedy": 1, "sample": samples, "multistart": n}[decode]
        if batch_size is None:
            batch_size = max(1, 100_000 // (k * augment))
        tic = time.perf_counter()
        inst = {"locs": torch.as_tensor(normalize(arr), dtype=torch.float32, device=self.device)}
        gen = torch.Generator(device=self.device).manual_seed(seed)
        tours_t, _ = decoding.decode(self.model, inst, decode, samples=samples, augment=augment,
                                     batch_size=batch_size, generator=gen)
        tours = tours_t.cpu().numpy().astype(np.int64)
        if improve is not None:
            tours = IMPROVERS[improve](arr, tours)
        costs = tour_lengths(arr, tours)
        return Solution(tours=tours, costs=costs, seconds=time.perf_counter() - tic)

    def improve(self, coords: Any, tours: Any, method: str = "2opt") -> Solution:
        """Apply local search to given tours (e.g. another solver's)."""
        if method not in IMPROVERS:
            raise ValueError(f"method must be one of {sorted(IMPROVERS)}, got {method!r}")
        arr, _ = _as_coords(coords)
        tic = time.perf_counter()
        t = np.asarray(tours, dtype=np.int64)
        if t.size != arr.shape[0] * arr.shape[1]:
            raise ValueError(f"tours must have shape {arr.shape[:2]}, got {t.shape}")
        out = IMPROVERS[method](arr, t.reshape(arr.shape[:2]))
        return Solution(tours=out, costs=tour_lengths(arr, out), seconds=time.perf_counter() - tic)

    def plot(self, coords: Any, tour: Any, path: str | os.PathLike[str] | None = None,
             title: str | None = None):  # noqa: ANN201 - a matplotlib Figure
        """Draw one instance's tour; saved as PNG when ``path`` is given. Returns the figure."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        arr, single = _as_coords(coords)
        if not single:
            raise ValueError("plot takes one instance: coords of shape (n, 2)")
        pts = arr[0]
        t = np.asarray(tour, dtype=np.int64)
        if sorted(t.tolist()) != list(range(len(pts))):
            raise ValueError(f"tour must be a permutation of range({len(pts)})")
        cycle = np.append(t, t[0])
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(pts[cycle, 0], pts[cycle, 1], "-", color="tab:blue", lw=1.2)
        ax.scatter(pts[:, 0], pts[:, 1], s=14, color="black", zorder=3)
        ax.scatter(pts[t[0], 0], pts[t[0], 1], s=60, marker="s", color="tab:red", zorder=4)
        length = float(tour_lengths(pts, t))
        ax.set_title(title or f"{len(pts)} nodes, length {length:.3f}")
        ax.set_aspect("equal")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
            plt.close(fig)
        return fig


def _read(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"{path} is not a readable checkpoint: {err}") from None
    missing = {"problem", "size", "model", "model_config"} - set(state if isinstance(state, dict) else ())
    if missing:
        raise ValueError(f"{path} is not a routing checkpoint (missing {sorted(missing)})")
    return state


def load_solver(name_or_path: str | os.PathLike[str], problem: str | None = None,
                device: str | torch.device = "cpu") -> Solver:
    """Load a shipped model by name (``"tsp20"``, ``"tsp50"``, ...) or a checkpoint path.

    Args:
        name_or_path: a name from :func:`pretrained_names`, a training checkpoint
            (``run_dir/checkpoint.pt``) or a file written by :func:`export_solver`.
        problem: if given, the checkpoint must be of this problem.
        device: where decoding runs.
    """
    path = Path(name_or_path)
    if not path.is_file():
        shipped = PRETRAINED_DIR / f"{name_or_path}.pt"
        if not shipped.is_file():
            raise ValueError(f"{name_or_path!r} is neither a file nor a shipped model; "
                             f"shipped: {pretrained_names()}")
        path = shipped
    state = _read(path)
    if problem is not None and state["problem"] != problem:
        raise ValueError(f"{path} holds a {state['problem']} model, not {problem}")
    model = AttentionModel(make_problem(state["problem"]), ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return Solver(model, size=int(state["size"]), device=device)


def export_solver(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str],
                  **provenance: Any) -> Path:
    """Write only what :func:`load_solver` needs (a few MB) from a training checkpoint.

    ``provenance`` (e.g. the training command, instances seen, wall time) is stored too.
    """
    state = _read(Path(checkpoint))
    slim = {k: state[k] for k in ("problem", "size", "model", "model_config")}
    slim["provenance"] = {
        "instances_seen": state.get("instances_seen"),
        "wall_time_s": state.get("wall_time"),
        "epoch": state.get("epoch"),
        "config": state.get("config"),
        **provenance,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, out)
    return out
