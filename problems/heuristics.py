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

__all__ = [
    "farthest_insertion",
    "greedy_insertion_op",
    "greedy_insertion_pctsp",
    "held_karp",
    "nearest_neighbour",
    "savings",
    "tour_lengths",
    "two_opt",
]

HELD_KARP_MAX_NODES = 16


def _batch(coords: np.ndarray, min_nodes: int = 3) -> tuple[np.ndarray, bool]:
    arr = np.asarray(coords, dtype=np.float64)
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError(f"coords must have shape (n, 2) or (B, n, 2), got {np.shape(coords)}")
    if arr.shape[1] < min_nodes:
        raise ValueError(f"coords must have at least {min_nodes} nodes, got {arr.shape[1]}")
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


# --- problems with a depot: node 0 is the depot, 1..n the customers --------------------


@numba.njit(cache=True)
def _savings(c: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Clarke-Wright parallel savings; ``demand`` as fractions of the capacity (1)."""
    n = c.shape[0] - 1
    d = _dist(c)
    routes = np.zeros((n, n), dtype=np.int64)  # customers of each route, in order
    length = np.ones(n, dtype=np.int64)
    load = demand.copy()
    owner = np.arange(n)  # route index of each customer (0-based customer ids)
    for i in range(n):
        routes[i, 0] = i
    pairs = n * (n - 1) // 2
    saving = np.empty(pairs)
    pi = np.empty(pairs, dtype=np.int64)
    pj = np.empty(pairs, dtype=np.int64)
    p = 0
    for i in range(n):
        for j in range(i + 1, n):
            saving[p] = d[0, i + 1] + d[0, j + 1] - d[i + 1, j + 1]
            pi[p], pj[p] = i, j
            p += 1
    for q in np.argsort(-saving):
        i, j = pi[q], pj[q]
        a, b = owner[i], owner[j]
        if a == b or load[a] + load[b] > 1.0 + 1e-9 or saving[q] <= 0:
            continue
        ra, rb = routes[a, : length[a]].copy(), routes[b, : length[b]].copy()
        # i must end route a and j must start route b (reversing routes as needed)
        if ra[-1] != i:
            if ra[0] != i:
                continue
            ra = ra[::-1].copy()
        if rb[0] != j:
            if rb[-1] != j:
                continue
            rb = rb[::-1].copy()
        merged = np.concatenate((ra, rb))
        routes[a, : len(merged)] = merged
        length[a] = len(merged)
        load[a] += load[b]
        length[b] = 0
        for v in rb:
            owner[v] = a
    out = np.zeros(2 * n, dtype=np.int64)
    pos = 0
    for r in range(n):
        if length[r] == 0:
            continue
        for v in routes[r, : length[r]]:
            out[pos] = v + 1
            pos += 1
        out[pos] = 0
        pos += 1
    return out[:pos]


def _split(seq: np.ndarray) -> list[np.ndarray]:
    trips, current = [], []
    for v in seq.tolist():
        if v == 0:
            if current:
                trips.append(np.array(current, dtype=np.int64))
            current = []
        else:
            current.append(v)
    if current:
        trips.append(np.array(current, dtype=np.int64))
    return trips


def _improve_trips(c: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """2-opt inside every trip (each trip is a closed tour through the depot)."""
    out = []
    for trip in _split(seq):
        if len(trip) >= 3:
            nodes = np.concatenate(([0], trip))
            order = _two_opt(c[nodes], np.arange(len(nodes)), 1000)
            k = int(np.flatnonzero(order == 0)[0])
            trip = nodes[np.roll(order, -k)][1:]
        out.extend([*trip.tolist(), 0])
    return np.array(out, dtype=np.int64)


def _depot_batch(depot: np.ndarray, locs: np.ndarray) -> np.ndarray:
    d = np.asarray(depot, dtype=np.float64).reshape(-1, 1, 2)
    loc, _ = _batch(locs, min_nodes=1)
    if d.shape[0] != loc.shape[0]:
        raise ValueError(f"depot must have one row per instance ({loc.shape[0]}), got {d.shape[0]}")
    return np.concatenate((d, loc), axis=1)


def _pad(seqs: list[np.ndarray]) -> np.ndarray:
    width = max(len(s) for s in seqs)
    return np.stack([np.pad(s, (0, width - len(s))) for s in seqs])


def savings(depot: np.ndarray, locs: np.ndarray, demand: np.ndarray, improve: bool = True) -> np.ndarray:
    """Clarke-Wright savings routes for CVRP, then 2-opt inside each trip.

    Args:
        depot: ``(B, 2)``; locs: ``(B, n, 2)``; demand: ``(B, n)`` as fractions of the capacity.

    Returns:
        ``(B, T)`` node sequences (0 = depot, ``i`` = ``locs[i - 1]``), zero-padded.
    """
    c = _depot_batch(depot, locs)
    dem = np.asarray(demand, dtype=np.float64).reshape(c.shape[0], -1)
    if (dem > 1).any() or (dem <= 0).any():
        raise ValueError("demand must be fractions of the capacity in (0, 1]")
    seqs = [_savings(ci, di) for ci, di in zip(c, dem, strict=True)]
    if improve:
        seqs = [_improve_trips(ci, s) for ci, s in zip(c, seqs, strict=True)]
    return _pad(seqs)


@numba.njit(cache=True)
def _insertion(c: np.ndarray, prize: np.ndarray, penalty: np.ndarray, max_length: float,
               min_prize: float) -> np.ndarray:
    """Greedy insertion from the depot. OP (``max_length`` finite): insert the node with the
    best prize per added length that still fits. PCTSP (``min_prize`` > 0): insert the node
    with the cheapest added length minus penalty saved, until the prize is reached and no
    insertion pays for itself."""
    n = c.shape[0] - 1
    d = _dist(c)
    tour = np.zeros(n + 1, dtype=np.int64)  # tour[0] = depot, closed
    size = 1
    length = 0.0
    collected = 0.0
    used = np.zeros(n + 1, dtype=np.bool_)
    used[0] = True
    while size <= n:
        best, best_pos, best_score, best_add = -1, 0, -np.inf, 0.0
        for v in range(1, n + 1):
            if used[v]:
                continue
            for p in range(size):
                a, b = tour[p], tour[(p + 1) % size]
                add = d[a, v] + d[v, b] - d[a, b]
                if length + add > max_length + 1e-9:
                    continue
                if np.isfinite(max_length):
                    score = prize[v - 1] / (add + 1e-9)
                else:
                    score = penalty[v - 1] - add
                    if collected < min_prize:
                        score += 1e6 * prize[v - 1]  # reaching the prize comes first
                if score > best_score:
                    best, best_pos, best_score, best_add = v, p, score, add
        if best < 0:
            break
        if not np.isfinite(max_length) and collected >= min_prize and best_score <= 0:
            break
        for q in range(size, best_pos + 1, -1):
            tour[q] = tour[q - 1]
        tour[best_pos + 1] = best
        size += 1
        used[best] = True
        length += best_add
        collected += prize[best - 1]
    out = np.zeros(size, dtype=np.int64)
    out[: size - 1] = tour[1:size]
    return out


def greedy_insertion_op(depot: np.ndarray, locs: np.ndarray, prize: np.ndarray,
                        max_length: np.ndarray) -> np.ndarray:
    """OP: insert the best prize per added length while the tour fits ``max_length``."""
    c = _depot_batch(depot, locs)
    pr = np.asarray(prize, dtype=np.float64).reshape(c.shape[0], -1)
    limit = np.broadcast_to(np.asarray(max_length, dtype=np.float64).reshape(-1), (c.shape[0],))
    zeros = np.zeros_like(pr[0])
    return _pad([_insertion(ci, p, zeros, float(m), 0.0)
                 for ci, p, m in zip(c, pr, limit, strict=True)])


def greedy_insertion_pctsp(depot: np.ndarray, locs: np.ndarray, prize: np.ndarray,
                           penalty: np.ndarray, min_prize: float = 1.0) -> np.ndarray:
    """PCTSP: cheapest insertion until the prize is collected, then while it pays."""
    c = _depot_batch(depot, locs)
    pr = np.asarray(prize, dtype=np.float64).reshape(c.shape[0], -1)
    pen = np.asarray(penalty, dtype=np.float64).reshape(c.shape[0], -1)
    return _pad([_insertion(ci, p, q, np.inf, min_prize)
                 for ci, p, q in zip(c, pr, pen, strict=True)])
