"""rlcore: the shared policy-gradient core (returns, advantages, baselines, losses).

Domain packages (``problems``, ``exploration``, ``distributional``) import from
here; nothing here imports them.
"""

from rlcore.baselines import (
    Baseline,
    CriticBaseline,
    ExponentialBaseline,
    GreedyRolloutBaseline,
    NoBaseline,
    SharedBaseline,
)
from rlcore.buffers import ReplayBuffer, ReplaySample
from rlcore.checkpoint import load_checkpoint, save_checkpoint
from rlcore.estimators import (
    batch_norm,
    beta_normalized,
    discounted_returns,
    explained_variance,
    gae,
    group_mean,
    group_norm,
    leader_reward,
    leave_one_out,
    nstep_returns,
    positive_only,
    reject_uniform_groups,
    sign_weights,
)
from rlcore.logging import Logger, progress
from rlcore.losses import (
    all_action_loss,
    entropy_loss,
    kl_penalty,
    ppo_clip_loss,
    reinforce_loss,
    topr_loss,
    value_loss,
)
from rlcore.methods import METHODS, Method, method_loss
from rlcore.normalize import DiscountedReturnFilter, RunningMeanStd
from rlcore.ppo import ActorCritic, PPOConfig, ppo_update, stream_advantages
from rlcore.seeding import seed_everything

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "ActorCritic",
    "PPOConfig",
    "ReplayBuffer",
    "ReplaySample",
    "Baseline",
    "CriticBaseline",
    "DiscountedReturnFilter",
    "ExponentialBaseline",
    "GreedyRolloutBaseline",
    "Logger",
    "Method",
    "NoBaseline",
    "RunningMeanStd",
    "SharedBaseline",
    "all_action_loss",
    "batch_norm",
    "beta_normalized",
    "discounted_returns",
    "entropy_loss",
    "explained_variance",
    "gae",
    "group_mean",
    "group_norm",
    "kl_penalty",
    "leader_reward",
    "leave_one_out",
    "load_checkpoint",
    "method_loss",
    "nstep_returns",
    "positive_only",
    "ppo_clip_loss",
    "ppo_update",
    "progress",
    "reinforce_loss",
    "reject_uniform_groups",
    "save_checkpoint",
    "seed_everything",
    "sign_weights",
    "stream_advantages",
    "topr_loss",
    "value_loss",
]
