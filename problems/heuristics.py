"""Classical TSP heuristics compiled with numba, batched over instances.

All functions take coordinates ``(B, n, 2)`` (or ``(n, 2)``) as NumPy arrays
and return tours as ``int64`` node orders; lengths are closed-tour float
Euclidean lengths.

* :func:`nearest_neighbour` - greedy construction from node 0.
* :func:`farthest_insertion` - insert the node farthest from the tour at its cheapest place.
* :func:`two_opt` - local search that reverses segments while that shortens the tour.
* :func:`held_karp` - exact dynamic programming, ``O(2^n n^2)``: a test oracle for small n.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["farthest_insertion", "held_karp", "nearest_neighbour", "tour_lengths", "two_opt"]

HELD_KARP_MAX_NODES = 16


def _batch(coords: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(coords, dtype=np.float64)
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError(f"coords must have shape (n, 2) or (B, n, 2), got {np.shape(coords)}")
    if arr.shape[1] < 3:
        raise ValueError(f"coords must have at least 3 nodes, got {arr.shape[1]}")
    if not np.isfinite(arr).all():
        raise ValueError("coords contains NaN or inf")
    return np.ascontiguousarray(arr), single


@numba.njit(cache=True)
def _dist(c: np.ndarray) -> np.ndarray:
    n = c.shape[0]
    d = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            d[i, j] = np.sqrt((c[i, 0] - c[j, 0]) ** 2 + (c[i, 1] - c[j, 1]) ** 2)
    return d


def tour_lengths(coords: np.ndarray, tours: np.ndarray) -> np.ndarray:
    """Closed tour lengths: ``(B, n, 2)`` coordinates, ``(B, n)`` tours -> ``(B,)``."""
    c, single = _batch(coords)
    t = np.asarray(tours)[None] if single else np.asarray(tours)
    pos = np.take_along_axis(c, t[..., None], axis=1)
    out = np.sqrt(((pos - np.roll(pos, -1, axis=1)) ** 2).sum(-1)).sum(-1)
    return out[0] if single else out


@numba.njit(cache=True)
def _nearest_neighbour(c: np.ndarray) -> np.ndarray:
    n = c.shape[0]
    d = _dist(c)
    tour = np.empty(n, dtype=np.int64)
    seen = np.zeros(n, dtype=np.bool_)
    tour[0] = 0
    seen[0] = True
    for i in range(1, n):
        last, best, best_d = tour[i - 1], -1, np.inf
        for j in range(n):
            if not seen[j] and d[last, j] < best_d:
                best, best_d = j, d[last, j]
        tour[i] = best
        seen[best] = True
    return tour


@numba.njit(cache=True)
def _farthest_insertion(c: np.ndarray) -> np.ndarray:
    n = c.shape[0]
    d = _dist(c)
    tour = np.empty(n, dtype=np.int64)
    in_tour = np.zeros(n, dtype=np.bool_)
    tour[0] = 0
    in_tour[0] = True
    size = 1
    min_d = d[0].copy()  # distance from each node to the tour
    while size < n:
        far, far_d = -1, -1.0
        for j in range(n):
            if not in_tour[j] and min_d[j] > far_d:
                far, far_d = j, min_d[j]
        best_pos, best_cost = 0, np.inf
        for p in range(size):
            a, b = tour[p], tour[(p + 1) % size]
            cost = d[a, far] + d[far, b] - d[a, b]
            if cost < best_cost:
                best_pos, best_cost = p, cost
        for q in range(size, best_pos + 1, -1):
            tour[q] = tour[q - 1]
        tour[best_pos + 1] = far
        size += 1
        in_tour[far] = True
        for j in range(n):
            if d[far, j] < min_d[j]:
                min_d[j] = d[far, j]
    return tour


@numba.njit(cache=True)
def _two_opt(c: np.ndarray, tour: np.ndarray, max_passes: int) -> np.ndarray:
    n = c.shape[0]
    d = _dist(c)
    t = tour.copy()
    for _ in range(max_passes):
        improved = False
        for i in range(n - 1):
            a, b = t[i], t[i + 1]
            for j in range(i + 2, n if i > 0 else n - 1):
                e, f = t[j], t[(j + 1) % n]
                delta = d[a, e] + d[b, f] - d[a, b] - d[e, f]
                if delta < -1e-12:
                    t[i + 1 : j + 1] = t[i + 1 : j + 1][::-1].copy()
                    b = t[i + 1]
                    improved = True
        if not improved:
            break
    return t


@numba.njit(cache=True)
def _held_karp(c: np.ndarray) -> tuple[float, np.ndarray]:
    n = c.shape[0]
    d = _dist(c)
    m = n - 1  # node 0 is the fixed start; subsets are over nodes 1..n-1
    full = 1 << m
    dp = np.full((full, m), np.inf)
    parent = np.full((full, m), -1, dtype=np.int64)
    for j in range(m):
        dp[1 << j, j] = d[0, j + 1]
    for s in range(1, full):
        for j in range(m):
            if not (s >> j) & 1 or dp[s, j] == np.inf:
                continue
            for k in range(m):
                if (s >> k) & 1:
                    continue
                ns = s | (1 << k)
                cand = dp[s, j] + d[j + 1, k + 1]
                if cand < dp[ns, k]:
                    dp[ns, k] = cand
                    parent[ns, k] = j
    best, last = np.inf, -1
    for j in range(m):
        total = dp[full - 1, j] + d[j + 1, 0]
        if total < best:
            best, last = total, j
    tour = np.zeros(n, dtype=np.int64)
    s = full - 1
    for pos in range(n - 1, 0, -1):
        tour[pos] = last + 1
        prev = parent[s, last]
        s ^= 1 << last
        last = prev
    return best, tour


def _apply(fn, coords: np.ndarray) -> np.ndarray:  # noqa: ANN001 - a numba dispatcher
    c, single = _batch(coords)
    tours = np.stack([fn(inst) for inst in c])
    return tours[0] if single else tours


def nearest_neighbour(coords: np.ndarray) -> np.ndarray:
    """Nearest-neighbour tours from node 0: ``(B, n)`` (or ``(n,)``)."""
    return _apply(_nearest_neighbour, coords)


def farthest_insertion(coords: np.ndarray) -> np.ndarray:
    """Farthest-insertion tours: ``(B, n)`` (or ``(n,)``)."""
    return _apply(_farthest_insertion, coords)


def two_opt(coords: np.ndarray, tours: np.ndarray, max_passes: int = 1000) -> np.ndarray:
    """Improve tours with 2-opt moves until none shortens them (or ``max_passes``).

    Never makes a tour longer. ``tours`` must be permutations of ``range(n)``.
    """
    c, single = _batch(coords)
    t = np.asarray(tours, dtype=np.int64)
    t = t[None] if single else t
    if t.shape != c.shape[:2]:
        raise ValueError(f"tours must have shape {c.shape[:2]}, got {t.shape}")
    if not (np.sort(t, axis=1) == np.arange(c.shape[1])).all():
        raise ValueError("tours must be permutations of range(n)")
    out = np.stack([_two_opt(ci, np.ascontiguousarray(ti), max_passes) for ci, ti in zip(c, t, strict=True)])
    return out[0] if single else out


def held_karp(coords: np.ndarray) -> tuple[float, np.ndarray]:
    """Exact optimum of one instance ``(n, 2)``: ``(length, tour)``; ``n <= 16``."""
    c, single = _batch(coords)
    if not single:
        raise ValueError("held_karp takes one instance of shape (n, 2)")
    if c.shape[1] > HELD_KARP_MAX_NODES:
        raise ValueError(f"coords must have at most {HELD_KARP_MAX_NODES} nodes for Held-Karp, "
                         f"got {c.shape[1]}")
    cost, tour = _held_karp(c[0])
    return float(cost), tour
