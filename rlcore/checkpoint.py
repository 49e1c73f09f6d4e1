"""Atomic checkpoints that hold everything needed to resume a run exactly."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from rlcore.seeding import get_rng_state, set_rng_state

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` plus every global RNG state to ``path`` atomically.

    ``state`` should hold what resuming needs: model and optimizer state dicts,
    the baseline's, step counters and the config (as a dict). The file is
    written to a temporary file in the same folder and renamed over ``path``,
    so a crash mid-write leaves the previous checkpoint intact.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    if "rng" in state:
        raise ValueError("state must not use the key 'rng': it is reserved for the RNG states")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({**state, "rng": get_rng_state()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    With ``restore_rng`` the global RNG states are restored too, so training
    continues with the random numbers it would have drawn without the stop.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    # weights_only=False: the RNG states hold numpy arrays and tuples.
    state = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(state, dict) or "rng" not in state:
        raise ValueError(f"{path} is not a checkpoint written by rlcore.save_checkpoint")
    if restore_rng:
        set_rng_state(state["rng"])
    return state
