"""Users' instances in, readable solutions out: one adapter per problem family.

An adapter validates arrays given in the caller's units (NumPy, torch or
lists; one instance or a batch), turns them into a float64 instance batch in
those units (demands become fractions of the capacity, prizes fractions of the
prize to collect), names the fields that scale with distances, and formats
node sequences as routes. Bad input raises ``ValueError``/``TypeError`` naming
the argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from problems.base import Instance

__all__ = ["ADAPTERS", "Adapter", "normalize"]


def _array(name: str, value: Any, ndim: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """``value`` as float64 with a batch axis; ``single`` when it had ``ndim[0]`` dims."""
    if value is None:
        raise ValueError(f"{name} is required")
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numeric, got {type(value).__name__}") from None
    if arr.ndim not in ndim:
        raise ValueError(f"{name} must have {ndim[0]} (one instance) or {ndim[1]} (a batch) "
                         f"dimensions, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    single = arr.ndim == ndim[0]
    return (arr[None] if single else arr), single


def _locs(arrays: Mapping[str, Any]) -> tuple[np.ndarray, bool]:
    locs, single = _array("locs", arrays.get("locs"), (2, 3))
    if locs.shape[-1] != 2:
        raise ValueError(f"locs must have shape (n, 2) or (B, n, 2), got {locs.shape[1:]} per instance")
    if locs.shape[0] == 0:
        raise ValueError("locs must hold at least one instance")
    return locs, single


def _per_node(name: str, arrays: Mapping[str, Any], locs: np.ndarray, single: bool) -> np.ndarray:
    """One value per location: ``(n,)`` for one instance, ``(B, n)`` for a batch."""
    want = locs.shape[1:2] if single else locs.shape[:2]
    arr, _ = _array(name, arrays.get(name), (len(want), len(want)))
    arr = arr[0]
    if arr.shape != want:
        raise ValueError(f"{name} must have one value per location, shape {want}, got {arr.shape}")
    return arr[None] if single else arr


def _per_instance(name: str, value: Any, batch: int) -> np.ndarray:
    arr, _ = _array(name, value, (0, 1))
    arr = arr.reshape(-1)
    if arr.shape[0] == 1:
        arr = np.repeat(arr, batch)
    if arr.shape[0] != batch:
        raise ValueError(f"{name} must be a scalar or have one value per instance ({batch}), "
                         f"got {arr.shape[0]}")
    return arr


def _depot(arrays: Mapping[str, Any], batch: int) -> np.ndarray:
    depot, _ = _array("depot", arrays.get("depot"), (1, 2))
    depot = depot.reshape(-1, 2) if depot.shape[-1] == 2 else depot
    if depot.shape[-1] != 2:
        raise ValueError(f"depot must have shape (2,) or (B, 2), got {depot.shape}")
    if depot.shape[0] == 1:
        depot = np.repeat(depot, batch, axis=0)
    if depot.shape[0] != batch:
        raise ValueError(f"depot must have one row per instance ({batch}), got {depot.shape[0]}")
    return depot


def _tensors(**arrays: np.ndarray) -> Instance:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


def _nonnegative(name: str, arr: np.ndarray) -> None:
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0 everywhere")


def _tsp(arrays: Mapping[str, Any]) -> tuple[Instance, bool]:
    locs, single = _locs(arrays)
    if locs.shape[1] < 3:
        raise ValueError(f"locs must have at least 3 nodes, got {locs.shape[1]}")
    return _tensors(locs=locs), single


def _vrp(arrays: Mapping[str, Any]) -> tuple[Instance, bool]:
    locs, single = _locs(arrays)
    demand = _per_node("demand", arrays, locs, single)
    capacity = _per_instance("capacity", arrays.get("capacity"), locs.shape[0])
    if (capacity <= 0).any():
        raise ValueError("capacity must be > 0")
    if (demand <= 0).any():
        raise ValueError("demand must be > 0 for every customer")
    if (demand > capacity[:, None]).any():
        raise ValueError("demand must not exceed capacity: a customer's demand is above the "
                         "vehicle capacity")
    depot = _depot(arrays, locs.shape[0])
    return _tensors(depot=depot, locs=locs, demand=demand / capacity[:, None],
                    capacity=capacity), single


def _op(arrays: Mapping[str, Any]) -> tuple[Instance, bool]:
    locs, single = _locs(arrays)
    prize = _per_node("prize", arrays, locs, single)
    _nonnegative("prize", prize)
    depot = _depot(arrays, locs.shape[0])
    max_length = _per_instance("max_length", arrays.get("max_length"), locs.shape[0])
    nearest = np.linalg.norm(locs - depot[:, None], axis=-1).min(axis=1)
    if (max_length < 2 * nearest).any():
        raise ValueError("max_length is too short to leave the depot: it must be at least twice "
                         "the distance to the nearest node")
    return _tensors(depot=depot, locs=locs, prize=prize, max_length=max_length), single


def _pctsp(arrays: Mapping[str, Any]) -> tuple[Instance, bool]:
    locs, single = _locs(arrays)
    prize = _per_node("prize", arrays, locs, single)
    penalty = _per_node("penalty", arrays, locs, single)
    _nonnegative("prize", prize)
    _nonnegative("penalty", penalty)
    real = prize if arrays.get("real_prize") is None else _per_node("real_prize", arrays, locs, single)
    _nonnegative("real_prize", real)
    goal = _per_instance("min_prize", arrays.get("min_prize", 1.0), locs.shape[0])
    if (goal <= 0).any():
        raise ValueError("min_prize must be > 0")
    depot = _depot(arrays, locs.shape[0])
    return _tensors(depot=depot, locs=locs, penalty=penalty, prize=prize / goal[:, None],
                    real_prize=real / goal[:, None]), single


def _tour_route(tour: np.ndarray) -> list[int]:
    return tour.tolist()


def split_trips(tour: np.ndarray, values: np.ndarray | None = None) -> list[list[Any]]:
    """Split a node sequence at depot visits (0) into trips of ``values`` (default: the
    customers as indices into the caller's ``locs``)."""
    vals = (tour - 1).tolist() if values is None else values.tolist()
    trips, current = [], []
    for node, value in zip(tour.tolist(), vals, strict=True):
        if node == 0:
            if current:
                trips.append(current)
            current = []
        else:
            current.append(value)
    if current:
        trips.append(current)
    return trips


def _visits(tour: np.ndarray) -> list[int]:
    """Nodes visited before the return to the depot, as indices into ``locs``."""
    out = []
    for node in tour.tolist():
        if node == 0:
            break
        out.append(node - 1)
    return out


@dataclass(frozen=True)
class Adapter:
    """How one problem family meets its users."""

    to_instance: Callable[[Mapping[str, Any]], tuple[Instance, bool]]
    """Validate arrays -> (float64 instance batch in the caller's units, single instance?)."""
    keys: tuple[str, ...]
    """The argument names :meth:`~problems.solver.Solver.solve` accepts."""
    scale_fields: tuple[str, ...]
    """Fields measured in distance units (divided by the coordinate extent for the model)."""
    routes: Callable[[np.ndarray], Any]
    """``node sequence -> readable route``."""
    maximise: bool = False
    """The objective is a prize to maximise (OP): the solver reports ``-cost``."""


ADAPTERS: dict[str, Adapter] = {
    "tsp": Adapter(_tsp, ("locs",), (), _tour_route),
    "cvrp": Adapter(_vrp, ("depot", "locs", "demand", "capacity"), (), split_trips),
    "sdvrp": Adapter(_vrp, ("depot", "locs", "demand", "capacity"), (), split_trips),
    **{f"op_{kind}": Adapter(_op, ("depot", "locs", "prize", "max_length"), ("max_length",),
                             _visits, maximise=True) for kind in ("const", "unif", "dist")},
    "pctsp": Adapter(_pctsp, ("depot", "locs", "prize", "penalty", "min_prize"), ("penalty",),
                     _visits),
    "spctsp": Adapter(_pctsp, ("depot", "locs", "prize", "penalty", "real_prize", "min_prize"),
                      ("penalty",), _visits),
}
"""Problem name -> :class:`Adapter`."""


def normalize(inst: Instance, coord_keys: tuple[str, ...], scale_fields: tuple[str, ...]
              ) -> tuple[Instance, np.ndarray]:
    """Map each instance into the unit square (one factor for both axes keeps the geometry).

    Returns the float32 model instance and the ``(B,)`` extents (distances scale by them).
    """
    coords = torch.cat([inst[k].reshape(inst[k].shape[0], -1, 2) for k in coord_keys], dim=1)
    low = coords.amin(dim=1)  # (B, 2)
    extent = (coords.amax(dim=1) - low).amax(dim=1)
    extent = torch.where(extent > 0, extent, torch.ones_like(extent))
    out = {}
    for key, value in inst.items():
        if key in coord_keys:
            shape = (-1,) + (1,) * (value.dim() - 2) + (2,)
            out[key] = (value - low.view(shape)) / extent.view(-1, *([1] * (value.dim() - 1)))
        elif key in scale_fields:
            out[key] = value / extent.view(-1, *([1] * (value.dim() - 1)))
        else:
            out[key] = value
    return {k: v.float() for k, v in out.items()}, extent.numpy()
