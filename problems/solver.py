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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from problems import decoding
from problems.base import Instance
from problems.heuristics import two_opt
from problems.inputs import ADAPTERS, normalize, split_trips
from problems.model import AttentionModel, ModelConfig
from problems.registry import make_problem
from problems.sdvrp import deliveries

__all__ = ["Solution", "Solver", "export_solver", "load_solver", "pretrained_names"]

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
IMPROVERS = {"2opt": two_opt}
"""Name -> ``f(coords (B, n, 2), tours (B, n)) -> tours``: local search applied to model output."""


def pretrained_names() -> list[str]:
    """Names of the shipped checkpoints (``load_solver`` accepts them)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


@dataclass(frozen=True)
class Solution:
    """Solutions of a batch of instances (B = 1 for a single instance)."""

    tours: np.ndarray
    """``(B, T)`` int64 node sequences as decoded. TSP: the order of ``locs``' rows (a closed
    tour). Depot problems: 0 is the depot and ``i >= 1`` is ``locs[i - 1]``; trailing zeros
    are padding."""
    costs: np.ndarray
    """``(B,)`` objective in the caller's units: tour length (TSP, CVRP, SDVRP), length plus
    penalties (PCTSP, SPCTSP) or the collected prize (OP, maximised)."""
    routes: list[Any]
    """Per instance: the tour (TSP); one list of customers (indices into ``locs``) per trip
    (CVRP, SDVRP); the visited nodes before the return (OP, PCTSP)."""
    feasible: np.ndarray
    """``(B,)`` bool, from the problem's independent checker."""
    seconds: float
    """Wall-clock time of the solve."""
    delivered: list[list[list[float]]] | None = None
    """SDVRP: the amount delivered at each stop of each trip, in the caller's demand units."""


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
        self.adapter = ADAPTERS[self.problem.name]
        self.size = size
        self.device = torch.device(device)

    def _instance(self, data: Any, arrays: dict[str, Any]) -> Instance:
        if data is not None:
            if isinstance(data, Mapping):
                arrays = {**data, **arrays}
            elif self.problem.name == "tsp":
                arrays = {"locs": data, **arrays}
            else:
                raise TypeError(f"{self.problem.name} instances are given as a dict or keyword "
                                f"arrays: {', '.join(self.adapter.keys)}")
        unknown = set(arrays) - set(self.adapter.keys)
        if unknown:
            raise TypeError(f"unexpected arguments {sorted(unknown)} for {self.problem.name}; "
                            f"expected {', '.join(self.adapter.keys)}")
        return self.adapter.to_instance(arrays)[0]

    def solve(
        self,
        data: Any = None,
        /,
        *,
        decode: str = "greedy",
        samples: int = 128,
        augment: int = 1,
        improve: str | None = None,
        batch_size: int = 1000,
        seed: int = 0,
        **arrays: Any,
    ) -> Solution:
        """Solve instances given in the caller's units.

        Args:
            data: TSP: coordinates ``(n, 2)`` or ``(B, n, 2)``. Other problems: a dict of
                arrays (or pass them as keywords): CVRP/SDVRP ``depot, locs, demand,
                capacity``; OP ``depot, locs, prize, max_length``; PCTSP ``depot, locs,
                prize, penalty`` (``min_prize``, default 1; SPCTSP also ``real_prize``, the
                prizes revealed on visiting, default the expected ones). NumPy, torch or
                lists; duplicate points are fine.
            decode: ``"greedy"``, ``"sample"`` (best of ``samples``) or ``"multistart"``
                (every node as the first node).
            samples: rollouts per instance for ``"sample"``.
            augment: 1, 2, 4 or 8 symmetric copies of each instance; the best is kept.
            improve: ``None`` or ``"2opt"`` (TSP only): local search on the model's tours.
            batch_size: instances per chunk at most; a chunk also holds at most
                :data:`problems.decoding.MAX_ROLLOUTS` rollouts.
            seed: RNG seed for ``"sample"``.
        """
        if decode not in decoding.STRATEGIES:
            raise ValueError(f"decode must be one of {decoding.STRATEGIES}, got {decode!r}")
        allowed = sorted(IMPROVERS) if self.problem.name == "tsp" else []
        if improve is not None and improve not in allowed:
            raise ValueError(f"improve must be None or one of {allowed} for "
                             f"{self.problem.name}, got {improve!r}")
        user = self._instance(data, arrays)
        n = self.problem.max_starts(user)
        if not self.size / 2 <= n <= self.size * 2:
            warnings.warn(f"instances have {n} nodes, far from the {self.size} this model was "
                          "trained on: expect larger gaps", stacklevel=2)
        tic = time.perf_counter()
        inst, _ = normalize(user, self.problem.coord_keys, self.adapter.scale_fields)
        inst = {key: v.to(self.device) for key, v in inst.items()}
        gen = torch.Generator(device=self.device).manual_seed(seed)
        tours_t, _ = decoding.decode(self.model, inst, decode, samples=samples, augment=augment,
                                     batch_size=batch_size, generator=gen)
        tours = tours_t.cpu().numpy().astype(np.int64)
        if improve is not None:
            tours = IMPROVERS[improve](user["locs"].numpy(), tours)
        return self._solution(user, tours, time.perf_counter() - tic)

    def _solution(self, user: Instance, tours: np.ndarray, seconds: float) -> Solution:
        t = torch.from_numpy(tours)
        cost = self.problem.cost(user, t.unsqueeze(1))[:, 0].numpy()
        feasible = np.ones(len(tours), dtype=bool)
        for b in range(len(tours)):
            try:
                self.problem.check({k: v[b : b + 1] for k, v in user.items()}, t[b : b + 1, None])
            except ValueError:
                feasible[b] = False
        routes = [self.adapter.routes(tours[b]) for b in range(len(tours))]
        delivered = None
        if self.problem.name == "sdvrp":
            amounts = deliveries(user["demand"], t.unsqueeze(1))[:, 0].numpy()
            capacity = user["capacity"].numpy()
            delivered = [[[float(a * capacity[b]) for a in trip] for trip in split_trips(tours[b], amounts[b])]
                         for b in range(len(tours))]
        return Solution(tours=tours, costs=-cost if self.adapter.maximise else cost,
                        routes=routes, feasible=feasible, seconds=seconds, delivered=delivered)

    def improve(self, coords: Any, tours: Any, method: str = "2opt") -> Solution:
        """Apply local search to given TSP tours (e.g. another solver's)."""
        if self.problem.name != "tsp" or method not in IMPROVERS:
            raise ValueError(f"method must be one of {sorted(IMPROVERS)} for TSP, got {method!r} "
                             f"for {self.problem.name}")
        user = self._instance(coords, {})
        locs = user["locs"].numpy()
        tic = time.perf_counter()
        t = np.asarray(tours, dtype=np.int64)
        if t.size != locs.shape[0] * locs.shape[1]:
            raise ValueError(f"tours must have shape {locs.shape[:2]}, got {t.shape}")
        out = IMPROVERS[method](locs, t.reshape(locs.shape[:2]))
        return self._solution(user, out, time.perf_counter() - tic)

    def plot(self, data: Any, tour: Any, path: str | os.PathLike[str] | None = None,
             title: str | None = None, **arrays: Any):  # noqa: ANN201 - a matplotlib Figure
        """Draw one instance's solution (``tour``: a row of ``Solution.tours``): one colour
        per trip, the depot as a red square, prizes as marker sizes. Saved as PNG when
        ``path`` is given. Returns the figure."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        user = self._instance(data, arrays)
        if user["locs"].shape[0] != 1:
            raise ValueError("plot takes one instance")
        t = np.asarray(tour, dtype=np.int64).reshape(-1)
        locs = user["locs"][0].numpy()
        fig, ax = plt.subplots(figsize=(5, 5))
        prize = user.get("prize")
        sizes = 14 if prize is None else 10 + 120 * prize[0].numpy() / max(float(prize.max()), 1e-9)
        ax.scatter(locs[:, 0], locs[:, 1], s=sizes, color="black", zorder=3)
        if "depot" in user:
            depot = user["depot"][0].numpy()
            pts = np.vstack((depot, locs))
            trips = self.adapter.routes(t)
            trips = trips if trips and isinstance(trips[0], list) else [trips]
            colours = plt.get_cmap("tab10")
            for i, trip in enumerate(trips):
                leg = [0, *[v + 1 for v in trip], 0]
                ax.plot(pts[leg, 0], pts[leg, 1], "-", lw=1.2, color=colours(i % 10))
            ax.scatter(depot[0], depot[1], s=80, marker="s", color="tab:red", zorder=4)
        else:
            if sorted(t.tolist()) != list(range(len(locs))):
                raise ValueError(f"tour must be a permutation of range({len(locs)})")
            cycle = np.append(t, t[0])
            ax.plot(locs[cycle, 0], locs[cycle, 1], "-", color="tab:blue", lw=1.2)
            ax.scatter(locs[t[0], 0], locs[t[0], 1], s=60, marker="s", color="tab:red", zorder=4)
        value = float(self._solution(user, t[None], 0.0).costs[0])
        label = "prize" if self.adapter.maximise else "cost"
        ax.set_title(title or f"{self.problem.name}, {len(locs)} nodes, {label} {value:.3f}")
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


def load_solver(name_or_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                problem: str | None = None, device: str | torch.device = "cpu") -> Solver:
    """Load a shipped model by name (``"tsp20"``, ``"tsp50"``, ...) or a checkpoint path.

    Args:
        name_or_path: a name from :func:`pretrained_names`, a training checkpoint
            (``run_dir/checkpoint.pt`` or ``run_dir/best.pt``) or a file written by
            :func:`export_solver`; or a list of checkpoint paths, whose weights are
            averaged in memory exactly as :func:`export_solver` would write them.
        problem: if given, the checkpoint must be of this problem.
        device: where decoding runs.
    """
    if isinstance(name_or_path, (str, os.PathLike)):
        path = Path(name_or_path)
        if not path.is_file():
            shipped = PRETRAINED_DIR / f"{name_or_path}.pt"
            if not shipped.is_file():
                raise ValueError(f"{name_or_path!r} is neither a file nor a shipped model; "
                                 f"shipped: {pretrained_names()}")
            path = shipped
        state = _read(path)
    else:
        state = _average(list(name_or_path), arg="name_or_path")
        path = Path(name_or_path[0])
    if problem is not None and state["problem"] != problem:
        raise ValueError(f"{path} holds a {state['problem']} model, not {problem}")
    model = AttentionModel(make_problem(state["problem"]), ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return Solver(model, size=int(state["size"]), device=device)


def export_solver(checkpoint: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                  out: str | os.PathLike[str], **provenance: Any) -> Path:
    """Write only what :func:`load_solver` needs (a few MB) from a training checkpoint.

    Given several checkpoints of the same problem, size and model shape, the
    file holds the mean of their weights (a "model soup", Wortsman et al. 2022):
    runs fine-tuned from one model stay in one basin, where the average of their
    end points can decode better than any of them (BatchNorm running statistics
    are averaged too; integer buffers come from the first). ``provenance`` (e.g. the
    training command, instances seen, wall time) is stored too, and for a soup
    the provenance of every ingredient.
    """
    paths = [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else list(checkpoint)
    slim = _average(paths)
    slim["provenance"] = {**slim["provenance"], **provenance}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, out)
    return out


def mean_weights(weights: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of models' state dicts of one shape, as a soup holds it.

    Floating-point tensors (BatchNorm running statistics included) are averaged in
    float64 and cast back; integer buffers come from the first.
    """
    first = weights[0]
    return {k: (torch.stack([w[k].double() for w in weights]).mean(0).to(v.dtype)
                if v.is_floating_point() else v)
            for k, v in first.items()}


def _average(paths: Sequence[str | os.PathLike[str]], arg: str = "checkpoint") -> dict[str, Any]:
    """The slim state of :func:`export_solver` (the mean of the checkpoints' weights)."""
    if not paths:
        raise ValueError(f"{arg}: expected a path or a non-empty list of paths")
    states = [_read(Path(p)) for p in paths]
    first = states[0]
    for path, state in zip(paths[1:], states[1:], strict=True):
        for key in ("problem", "size", "model_config"):
            if state[key] != first[key]:
                raise ValueError(f"{arg}: {path} has {key} {state[key]!r}, "
                                 f"but {paths[0]} has {first[key]!r}; a soup needs them equal")
    slim = {k: first[k] for k in ("problem", "size", "model_config")}
    slim["model"] = mean_weights([s["model"] for s in states])
    # An exported file as an ingredient brings its own provenance instead of a run's counters.
    origins = [{"checkpoint": str(p), **s["provenance"]} if "provenance" in s else
               {"checkpoint": str(p), "instances_seen": s.get("instances_seen"),
                "wall_time_s": s.get("wall_time"), "epoch": s.get("epoch"),
                "config": s.get("config")} for p, s in zip(paths, states, strict=True)]
    if len(origins) == 1:
        del origins[0]["checkpoint"]
        slim["provenance"] = origins[0]
    else:
        slim["provenance"] = {"soup_of": origins}
    return slim
