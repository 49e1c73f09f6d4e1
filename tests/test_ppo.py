"""PPO: stream advantages, the update, actor-critic networks, CartPole, exact resume, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import exploration.agent as agent
from exploration.agent import AgentConfig, build_model, evaluate, load_agent, train
from rlcore import gae
from rlcore.networks import bf16_is_fast
from rlcore.ppo import ActorCritic, PPOConfig, ppo_update, stream_advantages


def test_stream_advantages_mixes_gae_of_each_stream() -> None:
    gen = torch.Generator().manual_seed(0)
    T, N = 5, 3
    r_ext, r_int = torch.randn(T, N, generator=gen), torch.rand(T, N, generator=gen)
    values, last = torch.randn(T, N, 2, generator=gen), torch.randn(N, 2, generator=gen)
    dones = torch.zeros(T, N)
    dones[2, 1] = 1.0
    adv, ret = stream_advantages([r_ext, r_int], values, [dones, None], last, [0.999, 0.99], 0.95,
                                 [2.0, 1.0])
    a_ext, g_ext = gae(r_ext, values[..., 0], dones, last[:, 0], 0.999, 0.95)
    a_int, g_int = gae(r_int, values[..., 1], torch.zeros(T, N), last[:, 1], 0.99, 0.95)
    assert torch.allclose(adv, 2.0 * a_ext + a_int)
    assert torch.allclose(ret, torch.stack([g_ext, g_int], -1))
    # The intrinsic stream is non-episodic: its advantage at the done step still
    # bootstraps from the next step, the extrinsic one does not.
    assert float(a_int[2, 1]) == pytest.approx(
        float(r_int[2, 1] + 0.99 * values[3, 1, 1] - values[2, 1, 1]
              + 0.99 * 0.95 * a_int[3, 1]), rel=1e-5)
    assert float(a_ext[2, 1]) == pytest.approx(float(r_ext[2, 1] - values[2, 1, 0]), rel=1e-5)
    with pytest.raises(ValueError, match="gammas"):
        stream_advantages([r_ext, r_int], values, [dones, None], last, [0.99], 0.95, [2.0, 1.0])
    with pytest.raises(ValueError, match="values"):
        stream_advantages([r_ext], values, [dones], last, [0.99], 0.95, [1.0])


def _bandit_batch(size: int = 64) -> dict[str, torch.Tensor]:
    """One observation, three actions; action 0 has advantage +1, the others -1."""
    actions = torch.arange(size) % 3
    return {"obs": torch.ones(size, 4), "actions": actions, "logp": torch.full((size,), -1.0986),
            "advantages": torch.where(actions == 0, 1.0, -1.0),
            "returns": torch.ones(size, 1), "values": torch.zeros(size, 1)}


def test_ppo_update_moves_the_policy_to_the_better_action_and_reports_metrics() -> None:
    torch.manual_seed(0)
    model = ActorCritic.mlp(4, 3, hidden=(16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batch = _bandit_batch()
    before = torch.softmax(model(batch["obs"][:1])[0], -1)[0, 0]
    metrics = ppo_update(model, opt, batch, PPOConfig(epochs=4, minibatches=2, clip=0.2))
    after = torch.softmax(model(batch["obs"][:1])[0], -1)[0, 0]
    assert after > before + 0.05
    for key in ("loss/policy", "loss/value", "loss/entropy", "train/approx_kl",
                "train/clip_fraction", "train/explained_variance", "train/epochs"):
        assert key in metrics, key
    assert metrics["train/epochs"] == 4
    assert metrics["train/clip_fraction"] > 0  # lr 0.01 for 8 steps pushes ratios past 1.2


def test_ppo_update_stops_early_at_target_kl_and_clips_values() -> None:
    torch.manual_seed(0)
    model = ActorCritic.mlp(4, 3, hidden=(16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    cfg = PPOConfig(epochs=10, minibatches=2, target_kl=1e-6, value_clip=0.01)
    metrics = ppo_update(model, opt, _bandit_batch(), cfg)
    assert metrics["train/epochs"] == 1
    # Returns of 1 against old values of 0 and a clip of 0.01: the pessimistic (max) error
    # can never drop below that of a value stuck at 0.01.
    assert metrics["loss/value"] >= 0.5 * 0.99**2 - 1e-6


def test_ppo_update_with_two_heads_and_an_aux_loss() -> None:
    torch.manual_seed(0)
    model = ActorCritic.mlp(4, 3, value_heads=2, hidden=(8, 8))
    extra = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam([*model.parameters(), *extra.parameters()], lr=0.01)
    batch = {**_bandit_batch(), "returns": torch.ones(64, 2), "values": torch.zeros(64, 2),
             "index": torch.arange(64)}  # an add-on's own key travels with the minibatches
    seen = []

    def aux(mb):
        seen.append(mb["index"])
        loss = extra(mb["obs"]).pow(2).mean()
        return loss, {"loss/aux": float(loss.detach())}

    w0 = extra.weight.detach().clone()
    metrics = ppo_update(model, opt, batch, PPOConfig(epochs=2, minibatches=4), aux, ["ext", "int"])
    assert len(seen) == 8 and sorted(torch.cat(seen[:4]).tolist()) == list(range(64))
    assert not torch.equal(w0, extra.weight)
    assert {"loss/value_ext", "loss/value_int", "train/explained_variance_int", "loss/aux"} <= set(metrics)


def test_ppo_bad_input() -> None:
    model = ActorCritic.mlp(4, 3)
    opt = torch.optim.Adam(model.parameters())
    batch = _bandit_batch()
    with pytest.raises(ValueError, match="advantages"):
        ppo_update(model, opt, {k: v for k, v in batch.items() if k != "advantages"}, PPOConfig())
    with pytest.raises(ValueError, match="returns"):
        ppo_update(model, opt, {**batch, "returns": torch.ones(64)}, PPOConfig())
    with pytest.raises(ValueError, match="minibatches"):
        ppo_update(model, opt, batch, PPOConfig(minibatches=65))
    with pytest.raises(ValueError, match="head_names"):
        ppo_update(model, opt, batch, PPOConfig(), head_names=["a", "b"])
    with pytest.raises(ValueError, match="clip"):
        PPOConfig(clip=0.0)
    with pytest.raises(ValueError, match="epochs"):
        PPOConfig(epochs=0)
    with pytest.raises(ValueError, match="compute_dtype"):
        ActorCritic(torch.nn.Identity(), 4, 2, compute_dtype=torch.float64)


def test_actor_critic_shapes_and_bf16_compute() -> None:
    frames = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    cnn = ActorCritic.nature_cnn(4, 6, value_heads=2)
    logits, values = cnn(frames)
    assert logits.shape == (3, 6) and values.shape == (3, 2)
    half = ActorCritic.nature_cnn(4, 6, value_heads=2, compute_dtype=torch.bfloat16)
    half.load_state_dict(cnn.state_dict())
    logits16, values16 = half(frames)
    assert logits16.dtype == torch.float32
    assert torch.allclose(values16, values, atol=0.05)
    logits, values = ActorCritic.mlp(5, 2, value_heads=3)(torch.zeros(7, 5))
    assert logits.shape == (7, 2) and values.shape == (7, 3)


# rl-zoo's CartPole settings: 8 envs x 32 steps, 20 epochs, lambda 0.8, gamma 0.98, lr 1e-3.
CARTPOLE = dict(env="CartPole-v1", algo="ppo", num_envs=8, num_steps=32, lr=1e-3, gamma=0.98,
                lam=0.8, epochs=20, minibatches=1, clip=0.2, ent_coef=0.0, torch_threads=1,
                checkpoint_every=1000)


def test_ppo_solves_cartpole(tmp_path) -> None:
    result = train(AgentConfig(**CARTPOLE, total_steps=50_176, run_dir=str(tmp_path)))
    assert result["mean_return_last_100"] > 400, result
    cfg, model = load_agent(tmp_path / "checkpoint.pt")
    returns = evaluate(cfg, model, episodes=10, greedy=True)
    assert sum(returns) / len(returns) >= 475, returns


def _interrupt_after(monkeypatch, update: int) -> None:
    """Make train() die right after writing the checkpoint of ``update``, like a killed job."""
    real = agent.save_checkpoint

    def save_then_die(path, state):
        real(path, state)
        if state["progress"]["update"] == update:
            raise KeyboardInterrupt

    monkeypatch.setattr(agent, "save_checkpoint", save_then_die)


def _same_checkpoints(a, b) -> None:
    a, b = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
    for part in ("model", "rnd"):
        for key, value in (a[part] or {}).items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, b[part][key]), (part, key)
    for key, value in a["progress"].items():
        if key != "elapsed":  # wall time, the one thing that may differ
            assert np.array_equal(value, b["progress"][key]), key
    assert torch.equal(a["obs"], b["obs"])
    assert a["rnd"]["_extra_state"]["obs_rms"]["count"] == b["rnd"]["_extra_state"]["obs_rms"]["count"]


def test_resume_is_exact_with_rnd(tmp_path, monkeypatch) -> None:
    """4 updates straight == 2 updates, a kill, --resume, 2 more (lr annealing, RND state, envs)."""
    cfg = AgentConfig(env="exploration/Chain-v0", algo="rnd", num_envs=4, num_steps=64,
                      total_steps=4 * 4 * 64, minibatches=4, rnd_init_steps=8, checkpoint_every=2,
                      torch_threads=1, seed=3, run_dir=str(tmp_path / "straight"))
    straight = train(cfg)
    split = dataclasses.replace(cfg, run_dir=str(tmp_path / "split"))
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train(split)
    monkeypatch.undo()
    torch.manual_seed(12345)  # whatever happens in between must not matter
    resumed = train(dataclasses.replace(split, resume=True))
    assert resumed == straight
    _same_checkpoints(tmp_path / "straight" / "checkpoint.pt", tmp_path / "split" / "checkpoint.pt")


def test_resume_refuses_another_env_algo_or_config(tmp_path) -> None:
    cfg = AgentConfig(**{**CARTPOLE, "num_envs": 2, "num_steps": 8}, total_steps=16,
                      run_dir=str(tmp_path))
    train(cfg)
    with pytest.raises(ValueError, match="env='CartPole-v1'"):
        train(dataclasses.replace(cfg, env="Acrobot-v1", resume=True))
    with pytest.raises(ValueError, match="algo='ppo'"):
        train(dataclasses.replace(cfg, algo="rnd", resume=True))
    with pytest.raises(ValueError, match="another config"):
        train(dataclasses.replace(cfg, lr=0.5, resume=True))
    with pytest.raises(ValueError, match="trained on env 'CartPole-v1'"):
        load_agent(tmp_path / "checkpoint.pt", env="Acrobot-v1")
    # total_steps may grow on resume
    assert train(dataclasses.replace(cfg, total_steps=32, resume=True))["global_step"] == 32


def test_agent_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="close matches: .*ALE/Breakout-v5"):
        AgentConfig(env="ALE/Breakot-v5")
    with pytest.raises(ValueError, match="close matches: .*CartPole-v1"):
        AgentConfig(env="Cartpole-v1")
    with pytest.raises(ValueError, match="num_envs"):
        AgentConfig(num_envs=0)
    with pytest.raises(ValueError, match="rnd_proportion"):
        AgentConfig(rnd_proportion=0.0)
    with pytest.raises(ValueError, match="vector_env"):
        AgentConfig(env="CartPole-v1", vector_env="ale")
    with pytest.raises(ValueError, match="total_steps"):
        AgentConfig(total_steps=10)
    with pytest.raises(ValueError, match="device must be a torch device"):
        AgentConfig(device="gpu0")
    assert AgentConfig(algo="rnd").gamma == 0.999 and AgentConfig().lr == 2.5e-4


def test_rnd_defaults_follow_the_paper_and_its_code() -> None:
    """Predictor share 32 / num_envs (25 % at the paper's 128 envs); CNN value heads start near 0."""
    assert AgentConfig(algo="rnd", num_envs=128).rnd_proportion == 0.25
    assert AgentConfig(algo="rnd", num_envs=32).rnd_proportion == 1.0
    assert AgentConfig(algo="rnd", num_envs=32, rnd_proportion=0.5).rnd_proportion == 0.5
    rnd = build_model(AgentConfig(algo="rnd"), (4, 84, 84), 18)
    ppo = build_model(AgentConfig(algo="ppo"), (4, 84, 84), 18)
    assert rnd.value_head.weight.abs().max() < 0.05 < ppo.value_head.weight.abs().max()
    with torch.no_grad():
        values = rnd(torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8))[1]
    assert values.abs().max() < 0.05


def test_precision_auto_picks_bf16_only_where_it_is_native(monkeypatch) -> None:
    assert AgentConfig().precision == ("bf16" if bf16_is_fast("cpu") else "fp32")  # the default
    monkeypatch.setattr(agent, "bf16_is_fast", lambda device: False)
    assert AgentConfig(precision="auto").precision == "fp32"
    assert AgentConfig(precision="bf16").precision == "bf16"
    monkeypatch.setattr(agent, "bf16_is_fast", lambda device: True)
    assert AgentConfig(precision="auto").precision == "bf16"
    assert AgentConfig(precision="fp32").precision == "fp32"
