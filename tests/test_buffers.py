"""ReplayBuffer: wrap-around, n-step returns across episode ends, frame stacks, state round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcore.buffers import ReplayBuffer


def fill(buf: ReplayBuffer, steps: list[tuple[float, bool, bool, float | None]]) -> None:
    """Add a one-env episode stream: step t has observation [t] and reward t + 1;
    each entry is (obs, terminated, truncated, final obs or None)."""
    for t, (obs, term, trunc, final) in enumerate(steps):
        nxt = final if final is not None else obs + 1
        buf.add(np.array([[obs]], np.float32), np.array([t % 2]), np.array([t + 1.0]),
                np.array([term]), np.array([trunc]), np.array([[nxt]], np.float32))


def table(buf: ReplayBuffer, draws: int = 400) -> dict[float, tuple[float, float, float, int]]:
    """obs -> (return, discount, next obs, steps) over many samples (each obs must map to one row)."""
    s = buf.sample(draws)
    rows: dict[float, tuple[float, float, float, int]] = {}
    for o, r, d, n, m in zip(s.obs[:, 0].tolist(), s.returns.tolist(), s.discounts.tolist(),
                             s.next_obs[:, 0].tolist(), s.steps.tolist(), strict=True):
        assert rows.setdefault(o, (r, d, n, m)) == (r, d, n, m)
    return rows


# Episode A: steps 0, 1, 2 (terminates at 2); B: 3, 4 (truncated at 4, final obs 100);
# C: 5, 6, 7 still running (its next observation is 8).
STREAM = [(0, False, False, None), (1, False, False, None), (2, True, False, 99.0),
          (3, False, False, None), (4, False, True, 100.0),
          (5, False, False, None), (6, False, False, None), (7, False, False, None)]


def test_nstep_returns_across_episode_ends_by_hand() -> None:
    """n = 3, gamma = 0.5, rewards t + 1."""
    buf = ReplayBuffer(100, (1,), n_step=3, gamma=0.5)
    fill(buf, STREAM)
    rows = table(buf)
    assert rows == {
        0: (1 + 0.5 * 2 + 0.25 * 3, 0.0, 2, 3),  # terminates at 2: no bootstrap (any next obs)
        1: (2 + 0.5 * 3, 0.0, 2, 2),
        2: (3, 0.0, 2, 1),
        3: (4 + 0.5 * 5, 0.25, 100, 2),  # truncated at 4: bootstrap from the final obs
        4: (5, 0.5, 100, 1),
        5: (6 + 0.5 * 7 + 0.25 * 8, 0.125, 8, 3),
        6: (7 + 0.5 * 8, 0.25, 8, 2),  # the data ends: bootstrap from the latest next obs
        7: (8, 0.5, 8, 1),
    }


def test_ring_wraps_and_forgets_the_oldest() -> None:
    buf = ReplayBuffer(5, (1,), n_step=2, gamma=0.5)
    fill(buf, STREAM)  # 8 steps into 5 slots: steps 3..7 remain
    assert len(buf) == 5 and buf.full and buf.pos == 3
    rows = table(buf)
    assert sorted(rows) == [3, 4, 5, 6, 7]
    assert rows[3] == (4 + 0.5 * 5, 0.25, 100, 2) and rows[5] == (6 + 0.5 * 7, 0.25, 7, 2)
    assert rows[7] == (8, 0.5, 8, 1)  # the window never runs into the overwritten slots
    # The truncated step's final observation is dropped once its slot is overwritten.
    assert list(buf.final_obs) == [(4, 0)]
    fill(buf, [(10 + t, False, False, None) for t in range(2)])
    assert buf.final_obs == {}


def test_parallel_envs_keep_their_own_streams() -> None:
    buf = ReplayBuffer(20, (1,), n_envs=2, n_step=2, gamma=1.0)
    for t in range(4):  # env 0 observes t, env 1 observes 10 + t and terminates at t = 1
        obs = np.array([[t], [10 + t]], np.float32)
        buf.add(obs, np.zeros(2, np.int64), np.array([1.0, 10.0]), np.array([False, t == 1]),
                np.zeros(2, bool), obs + 1)
    rows = table(buf)
    assert rows[0] == (2, 1, 2, 2) and rows[3] == (1, 1, 4, 1)
    assert rows[10] == (20, 0, 11, 2) and rows[11] == (10, 0, 11, 1) and rows[12] == (20, 1, 14, 2)


def stacked(frames: list[int], t: int, start: int, f: int = 3) -> np.ndarray:
    """FrameStackObservation with reset padding: frames t-f+1..t, the episode's first repeated."""
    return np.array([[frames[max(s, start)]] * 2 for s in range(t - f + 1, t + 1)], np.float32)


def test_frame_stacks_are_stored_once_and_rebuilt() -> None:
    buf = ReplayBuffer(6, (3, 2), n_step=1, gamma=0.5, frame_stack=3)
    assert buf.frames.shape == (6, 1, 2)  # one frame per step, not three
    frames = list(range(10))
    starts = [0, 0, 0, 0, 4, 4, 4, 4, 4]  # a new episode at step 4 (step 3 terminated)
    for t in range(9):
        obs = stacked(frames, t, starts[t])[None]
        nxt = stacked(frames, t + 1, starts[t])[None] if t != 3 else np.full((1, 3, 2), -1.0)
        buf.add(obs, np.array([0]), np.array([1.0]), np.array([t == 3]), np.array([False]), nxt)
    s = buf.sample(300)
    newest = s.obs[:, -1, 0].long().tolist()
    # Steps 3..8 are stored; the oldest F - 1 = 2 of them (3, 4) are never drawn, since
    # once the ring has wrapped their earlier frames may be overwritten.
    assert sorted(set(newest)) == [5, 6, 7, 8]
    for i, t in enumerate(newest):
        assert torch.equal(s.obs[i], torch.from_numpy(stacked(frames, t, 4)))
        assert torch.equal(s.next_obs[i], torch.from_numpy(stacked(frames, t + 1, 4)))


def test_state_dict_round_trip_continues_the_same_samples() -> None:
    a = ReplayBuffer(5, (1,), n_step=2, gamma=0.5, seed=3)
    fill(a, STREAM)
    b = ReplayBuffer(5, (1,), n_step=2, gamma=0.5, seed=99)
    b.load_state_dict(a.state_dict())
    sa, sb = a.sample(32), b.sample(32)
    assert torch.equal(sa.obs, sb.obs) and torch.equal(sa.returns, sb.returns)
    assert torch.equal(sa.next_obs, sb.next_obs)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(1, (1,))
    with pytest.raises(ValueError, match="n_step"):
        ReplayBuffer(10, (1,), n_step=0)
    with pytest.raises(ValueError, match="frame_stack"):
        ReplayBuffer(10, (4, 84, 84), frame_stack=3)
    with pytest.raises(ValueError, match="gamma"):
        ReplayBuffer(10, (1,), gamma=1.5)
    buf = ReplayBuffer(10, (2,))
    with pytest.raises(ValueError, match="empty"):
        buf.sample(4)
    with pytest.raises(ValueError, match="obs must have shape"):
        buf.add(np.zeros((1, 3)), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros((1, 2)))
