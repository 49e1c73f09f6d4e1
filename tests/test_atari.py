"""Atari: preprocessing, snapshots for exact resume, a PPO-RND smoke run with its TensorBoard
tags, evaluation with a video, the scripts' command lines and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from exploration.agent import AgentConfig, train
from exploration.envs import make_vector_env, restore_envs, snapshot_envs
from tests.conftest import ROOT, load_example

evaluate_atari = load_example("evaluate_atari")

TAGS = {
    "charts/episode_return", "charts/episode_length", "rollout/extrinsic_return",
    "rollout/intrinsic_return", "rollout/intrinsic_reward", "loss/policy", "loss/value",
    "loss/value_extrinsic", "loss/value_intrinsic", "loss/entropy", "loss/rnd",
    "train/approx_kl", "train/clip_fraction", "train/explained_variance_extrinsic",
    "train/explained_variance_intrinsic", "time/sps", "charts/rooms_visited",
}


def test_atari_preprocessing_and_backends_agree_on_shapes() -> None:
    envs = make_vector_env("ALE/Breakout-v5", 2)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert envs.single_action_space.n == 4
    fast = make_vector_env("ALE/Breakout-v5", 2, backend="ale")
    obs2, _ = fast.reset(seed=0)
    assert obs2.shape == obs.shape and obs2.dtype == obs.dtype
    fast.step(np.zeros(2, dtype=np.int64))
    envs.close()
    fast.close()
    with pytest.raises(ValueError, match="Atari"):
        make_vector_env("CartPole-v1", 2, backend="ale")


def test_snapshot_restores_atari_envs_bit_for_bit() -> None:
    envs = make_vector_env("ALE/Breakout-v5", 2)
    envs.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        envs.step(rng.integers(0, 4, 2))
    state = snapshot_envs(envs)
    actions = rng.integers(0, 4, (200, 2))  # with sticky actions, so the emulator RNG matters
    first = [envs.step(a)[:2] for a in actions]
    other = make_vector_env("ALE/Breakout-v5", 2)
    other.reset(seed=99)
    restore_envs(other, state)
    second = [other.step(a)[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(first, second, strict=True):
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
    with pytest.raises(TypeError, match="SyncVectorEnv"):
        snapshot_envs(make_vector_env("ALE/Breakout-v5", 1, backend="ale"))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Two updates of PPO-RND, 2 envs, Montezuma's Revenge; 160-frame episodes so some end."""
    run_dir = tmp_path_factory.mktemp("smoke")
    cfg = AgentConfig(env="ALE/MontezumaRevenge-v5", algo="rnd", num_envs=2, num_steps=32,
                      total_steps=2 * 2 * 32, minibatches=2, epochs=1, rnd_init_steps=4,
                      max_episode_frames=160, checkpoint_every=1, run_dir=str(run_dir))
    return cfg, train(cfg)


def test_atari_smoke_run_writes_every_tag(smoke_run) -> None:
    cfg, result = smoke_run
    assert result["global_step"] == 128
    acc = EventAccumulator(cfg.run_dir)
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert TAGS <= tags, TAGS - tags
    assert len(acc.Scalars("loss/rnd")) == 2
    assert acc.Scalars("charts/rooms_visited")[-1].value >= 1
    # 160 frames / 4 = 40 steps, of which the first 4 were the random agent's (RND's statistics)
    assert acc.Scalars("charts/episode_length")[-1].value == 40 - cfg.rnd_init_steps


def test_evaluate_script_reports_and_records(smoke_run, tmp_path, capsys) -> None:
    cfg, _ = smoke_run
    video = tmp_path / "play.mp4"
    mean, std = evaluate_atari.main(evaluate_atari.EvalConfig(
        checkpoint=f"{cfg.run_dir}/checkpoint.pt", episodes=2, video=str(video)))
    assert std >= 0 and np.isfinite(mean)
    assert "2 episodes: return" in capsys.readouterr().out
    assert video.stat().st_size > 1000
    with pytest.raises(ValueError, match="trained on env 'ALE/MontezumaRevenge-v5'"):
        evaluate_atari.main(evaluate_atari.EvalConfig(
            checkpoint=f"{cfg.run_dir}/checkpoint.pt", env="ALE/Breakout-v5"))
    foreign = tmp_path / "foreign.pt"
    torch.save({"x": 1}, foreign)
    with pytest.raises(ValueError, match="not a checkpoint"):
        evaluate_atari.main(evaluate_atari.EvalConfig(checkpoint=str(foreign)))


def test_scripts_help_and_unknown_env() -> None:
    out = subprocess.run([sys.executable, "examples/train_atari.py", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--env", "--algo", "--rnd-proportion", "--resume", "--checkpoint-every",
                 "--vector-env", "--precision"):
        assert flag in out, flag
    out = subprocess.run([sys.executable, "examples/evaluate_atari.py", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "--video" in out and "--episodes" in out
    bad = subprocess.run([sys.executable, "examples/train_atari.py", "--env", "ALE/Montezuma-v5"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "ALE/MontezumaRevenge-v5" in bad.stderr and "close matches" in bad.stderr


def test_ale_backend_trains_and_resumes_with_fresh_episodes(tmp_path, capsys) -> None:
    cfg = AgentConfig(env="ALE/Breakout-v5", vector_env="ale", num_envs=2, num_steps=16,
                      total_steps=32, minibatches=2, epochs=1, run_dir=str(tmp_path))
    assert train(cfg)["global_step"] == 32
    resumed = train(AgentConfig(**{**cfg.__dict__, "total_steps": 64, "resume": True}))
    assert resumed["global_step"] == 64
    assert "episodes restart" in capsys.readouterr().out


def test_learning_curve_png_from_the_tensorboard_logs(smoke_run, tmp_path) -> None:
    from exploration.plots import load_scalars, plot_runs

    cfg, _ = smoke_run
    steps, values = load_scalars(cfg.run_dir, "loss/rnd")
    assert steps.tolist() == [64, 128] and len(values) == 2
    out = plot_runs([cfg.run_dir], tmp_path / "curve.png", tag="charts/rooms_visited")
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="no scalar"):
        load_scalars(cfg.run_dir, "charts/nothing")
