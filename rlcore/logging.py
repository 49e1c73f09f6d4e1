"""Logger: TensorBoard scalars plus a CSV file and an optional console line.

Tags are ``prefix/name`` with a small set of stable prefixes, so runs of
different agents line up in TensorBoard: ``train/``, ``eval/``, ``loss/``,
``time/`` (``time/sps``), ``baseline/``, ``charts/``, ``rollout/``.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

__all__ = ["PREFIXES", "Logger", "progress"]

PREFIXES = ("train", "eval", "loss", "time", "baseline", "charts", "rollout")

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, total: int | None = None, desc: str = "") -> tqdm:
    """A progress bar for long loops; silent when stderr is not a terminal."""
    return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, mininterval=1.0, disable=None)


class Logger:
    """Write scalars to TensorBoard (``log_dir``) and ``log_dir/progress.csv``.

    Args:
        log_dir: the run's folder, e.g. ``runs/<name>``.
        config: hyperparameters, logged once as a TensorBoard text and
            ``config.json``.
        console: also print each :meth:`log` call as one line.
    """

    def __init__(
        self, log_dir: str | os.PathLike[str], config: Mapping[str, Any] | None = None,
        console: bool = False,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(self.log_dir))
        self.console = console
        self._csv_file = open(self.log_dir / "progress.csv", "a", newline="")  # noqa: SIM115
        self._csv = csv.writer(self._csv_file)
        if self._csv_file.tell() == 0:
            self._csv.writerow(["step", "tag", "value", "wall_time"])
        self._start = time.time()
        if config is not None:
            self.log_config(config)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record the hyperparameters once (TensorBoard text and ``config.json``)."""
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping, got {type(config).__name__}")
        rows = "\n".join(f"|{k}|{v}|" for k, v in config.items())
        self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")
        with open(self.log_dir / "config.json", "w") as f:
            json.dump(dict(config), f, indent=2, default=str)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Write every ``tag -> value`` at ``step``; tags must start with a known prefix."""
        now = time.time()
        for tag, value in metrics.items():
            prefix = tag.split("/", 1)[0]
            if "/" not in tag or prefix not in PREFIXES:
                raise ValueError(
                    f"metric tag {tag!r} must look like 'prefix/name' with prefix in {PREFIXES}"
                )
            value = float(value)
            self.writer.add_scalar(tag, value, step)
            self._csv.writerow([step, tag, value, round(now - self._start, 3)])
        self._csv_file.flush()
        if self.console:
            items = "  ".join(f"{k}={float(v):.4g}" for k, v in metrics.items())
            tqdm.write(f"[{step}] {items}")

    def close(self) -> None:
        self.writer.close()
        self._csv_file.close()

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
