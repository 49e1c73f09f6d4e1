"""The attention model of Kool, van Hoof and Welling (ICLR 2019), shared by every problem.

Encoder: a linear node embedding, then 3 layers of 8-head self-attention and a
512-wide feed-forward block, each followed by a skip connection and batch
norm. Decoder: one 8-head glimpse from a problem-specific context, then a
single-head pointer whose logits are clipped with ``10 * tanh``.

Efficiency: the encoder runs once per instance, and the glimpse keys/values,
the pointer keys and every node's share of the step-context projection are
projected once per instance and reused at every step (a step gathers them for
its current node instead of projecting a context; the glimpse's output
projection is folded into the pointer keys). ``k`` rollouts of one instance
(samples, or POMO-style starts) share all of it: the decoder's queries are
``(B, k, d)`` against ``(B, n, d)`` keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from problems.base import Instance, RoutingProblem, StepContext

__all__ = ["AttentionCritic", "AttentionModel", "ModelConfig", "Rollout", "sample_nodes"]


ENCODE_ROWS = 4096
"""Nodes per encoder sub-batch at inference (see ``AttentionModel._embed``)."""


SMALL_ATTENTION = 32
"""Keys per query at most for which ``attend`` multiplies out the scores itself on CPU."""


def attend(query: Tensor, key: Tensor, value: Tensor, blocked: Tensor | None = None) -> Tensor:
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d) - inf * blocked) v`` over the last
    two dimensions; ``blocked`` (broadcastable to the scores) marks the keys a query must not see.

    On CPU, with several queries against at most ``SMALL_ATTENTION`` keys (the encoder and the
    multi-rollout decoder of 20-node problems), three plain products are faster than
    ``scaled_dot_product_attention``, whose CPU kernel is tiled for long sequences
    (``benchmarks/attention_paths.py``: a TSP20 POMO training step 1.14x, multistart decoding
    of TSP20 1.66x). With a single query (greedy decoding) the kernel is faster. At 50 keys the
    gain is small in training (1.04x) and the decoding measurements disagree between runs
    (multistart x8 of 200 TSP50 instances: the kernel 1.2x faster in one process, 1.3x slower
    in another), so the kernel keeps 50 keys and more, and all of CUDA."""
    if query.device.type != "cpu" or query.shape[-2] == 1 or key.shape[-2] > SMALL_ATTENTION:
        mask = None if blocked is None else ~blocked
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    scores = (query * (1 / math.sqrt(query.shape[-1]))) @ key.transpose(-1, -2)
    if blocked is not None:
        # an additive bias needs no mask in the backward pass, unlike masked_fill
        scores = scores + torch.zeros(blocked.shape, dtype=scores.dtype,
                                      device=scores.device).masked_fill_(blocked, float("-inf"))
    return torch.softmax(scores, dim=-1) @ value


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture hyperparameters (the paper's defaults)."""

    embed_dim: int = 128
    heads: int = 8
    layers: int = 3
    ff_dim: int = 512
    tanh_clip: float = 10.0

    def __post_init__(self) -> None:
        for name in ("embed_dim", "heads", "layers", "ff_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.embed_dim % self.heads:
            raise ValueError(
                f"embed_dim must be divisible by heads, got {self.embed_dim} and {self.heads}"
            )
        if self.tanh_clip <= 0:
            raise ValueError(f"tanh_clip must be > 0, got {self.tanh_clip}")


class _BatchNorm(nn.Module):
    """Batch norm over every node of the batch, as the paper's encoder uses."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x.reshape(-1, x.shape[-1])).view(x.shape)


class _EncoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.embed_dim, bias=False)
        self.out = nn.Linear(cfg.embed_dim, cfg.embed_dim, bias=False)
        self.norm1 = _BatchNorm(cfg.embed_dim)
        self.ff = nn.Sequential(
            nn.Linear(cfg.embed_dim, cfg.ff_dim), nn.ReLU(), nn.Linear(cfg.ff_dim, cfg.embed_dim)
        )
        self.norm2 = _BatchNorm(cfg.embed_dim)

    def forward(self, h: Tensor) -> Tensor:
        batch, n, d = h.shape
        q, k, v = self.qkv(h).view(batch, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = attend(q, k, v).transpose(1, 2).reshape(batch, n, d)
        h = self.norm1(h + self.out(att))
        return self.norm2(h + self.ff(h))


@dataclass
class _Cache:
    """Per-instance projections reused at every decoding step."""

    emb: Tensor  # (B, n, d) node embeddings
    fixed: Tensor  # (B, 1, d) projected graph embedding
    glimpse_key: Tensor  # (B, H, n, d/H)
    glimpse_val: Tensor  # (B, H, n, d/H)
    logit_key: Tensor  # (B, d, n) pointer keys with project_out folded in, ready for the bmm
    context_nodes: Tensor  # (B, n * m, d): node i's projection in context slot j at i * m + j


@dataclass
class Rollout:
    """``k`` decoded solutions per instance."""

    actions: Tensor  # (B, k, T) node sequence
    logp: Tensor  # (B, k) log-probability of the decisions the policy made
    first_logp: Tensor | None = None  # (B, n) the policy's first-node distribution (score_first)


def sample_nodes(logp: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One index per row of ``logp`` ``(..., n)``, drawn with probability ``exp(logp)``.

    Inverse CDF: one uniform number per row against the cumulative probabilities.
    ``torch.multinomial`` draws an exponential variate for every entry, which made
    sampling ~8 % of a TSP50 multi-start training step on CPU; this is ~5x cheaper.
    A zero-probability (masked) entry is never returned: should float rounding of the
    cumulative sum ever land on one, the row falls back to its most likely entry.
    """
    probs = logp.exp()
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(cdf.shape[:-1] + (1,), generator=generator, device=cdf.device, dtype=cdf.dtype)
    index = torch.searchsorted(cdf, u * cdf[..., -1:], right=True).clamp_(max=cdf.shape[-1] - 1)
    valid = probs.gather(-1, index) > 0
    return torch.where(valid, index, logp.argmax(dim=-1, keepdim=True)).squeeze(-1)


class AttentionModel(nn.Module):
    """Encoder-decoder policy for a :class:`~problems.base.RoutingProblem`.

    Args:
        problem: defines the node features, the step context and the masks.
        cfg: architecture hyperparameters.
    """

    def __init__(self, problem: RoutingProblem, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ModelConfig()
        self.problem = problem
        self.cfg = cfg
        d = cfg.embed_dim
        self.init_embed = nn.Linear(problem.node_dim, d)
        self.layers = nn.Sequential(*(_EncoderLayer(cfg) for _ in range(cfg.layers)))
        ctx = problem.context_nodes * d + problem.context_extra
        self.project_node = nn.Linear(d, 3 * d, bias=False)
        self.project_fixed = nn.Linear(d, d, bias=False)
        self.project_step = nn.Linear(ctx, d, bias=False)
        self.project_out = nn.Linear(d, d, bias=False)
        self.placeholder = nn.Parameter(torch.empty(ctx).uniform_(-1, 1))
        dynamic_dim = getattr(problem, "dynamic_dim", 0)
        self.project_dynamic = nn.Linear(dynamic_dim, 3 * d, bias=False) if dynamic_dim else None
        if self.project_dynamic is not None:
            # Zero: the dynamic features start with no say, so a model warm-started from weights
            # without them (SDVRP from CVRP) begins as exactly that policy, not a perturbed one.
            nn.init.zeros_(self.project_dynamic.weight)

    def _embed(self, features: Tensor) -> Tensor:
        """Encoder output ``(B, n, d)``. Without gradients and in eval mode, where batch
        norm is a fixed per-node affine map, instances go through in sub-batches of about
        ``ENCODE_ROWS`` nodes: the 512-wide feed-forward activations then stay in cache
        instead of streaming the whole batch's through memory."""
        if self.training or torch.is_grad_enabled():
            return self.layers(self.init_embed(features))
        per = max(1, ENCODE_ROWS // features.shape[1])
        return torch.cat([self.layers(self.init_embed(part)) for part in features.split(per)])

    def encode(self, inst: Instance) -> _Cache:
        """Run the encoder and project everything the decoder reuses."""
        emb = self._embed(self.problem.node_features(inst))
        batch, n, d = emb.shape
        heads = self.cfg.heads
        gk, gv, lk = self.project_node(emb).chunk(3, dim=-1)

        def split(x: Tensor) -> Tensor:
            # Contiguous per head: every decoding step's attention reads these, and with
            # strided keys CPU attention runs at about half speed.
            return x.view(batch, n, heads, d // heads).transpose(1, 2).contiguous()

        # project_step's weight is [W_0 .. W_{m-1} | W_extra] over the context [h_0 .. h_{m-1} |
        # extra]; stacking the W_j row-wise projects every node into every slot in one matmul.
        m = self.problem.context_nodes
        w_nodes = self.project_step.weight[:, : m * d].reshape(d, m, d).transpose(0, 1)
        return _Cache(
            emb=emb,
            fixed=self.project_fixed(emb.mean(dim=1, keepdim=True)),
            glimpse_key=split(gk),
            glimpse_val=split(gv),
            # The pointer scores (g W_out^T) . key = g . (key W_out): folding the glimpse's output
            # projection into the keys once per instance saves a (B k, d) x (d, d) matrix
            # product at every step, forward and backward.
            logit_key=(lk @ self.project_out.weight).transpose(1, 2).contiguous(),
            context_nodes=F.linear(emb, w_nodes.reshape(m * d, d)).view(batch, n * m, d),
        )

    def _step_projection(self, cache: _Cache, context: StepContext) -> Tensor:
        """``project_step`` of the step context ``(B, k, d)``, from the cached node projections."""
        nodes, extra = context
        batch, k, m = nodes.shape
        d = self.cfg.embed_dim
        n = cache.context_nodes.shape[1] // m
        # Row of (instance, node, slot) in the flattened cache; selecting whole rows is about
        # twice as fast as a gather with the index expanded over d, backward included.
        index = (nodes * m + torch.arange(m, device=nodes.device)
                 + (torch.arange(batch, device=nodes.device) * n * m).view(batch, 1, 1))
        step = cache.context_nodes.reshape(-1, d).index_select(0, index.view(-1))
        step = step.view(batch, k, m, d).sum(dim=2)
        if extra is not None:
            step = step + F.linear(extra, self.project_step.weight[:, m * d :])
        return step

    def log_probs(
        self,
        cache: _Cache,
        context: StepContext | None,
        mask: Tensor,
        dynamic: Tensor | None = None,
    ) -> Tensor:
        """``(B, k, n)`` log-probabilities of the next node for ``(B, k)`` rollouts.

        ``dynamic`` ``(B, k, n, F)`` node features that change during decoding
        (SDVRP's remaining demand) shift each rollout's keys and values.
        """
        batch, k, n = mask.shape
        d, heads = self.cfg.embed_dim, self.cfg.heads
        if context is None:
            step = self.project_step(self.placeholder).expand(batch, k, d)
        else:
            step = self._step_projection(cache, context)
        query = (cache.fixed + step).view(batch, k, heads, d // heads).transpose(1, 2)
        if dynamic is None or self.project_dynamic is None:
            glimpse = attend(query, cache.glimpse_key, cache.glimpse_val, mask.unsqueeze(1))
            logits = torch.bmm(glimpse.transpose(1, 2).reshape(batch, k, d), cache.logit_key)
        else:
            logits = self._dynamic_attention(cache, query, mask, dynamic)
        logits = self.cfg.tanh_clip * torch.tanh(logits / math.sqrt(d))
        return torch.log_softmax(logits.masked_fill(mask, float("-inf")), dim=-1)

    def _dynamic_attention(
        self, cache: _Cache, query: Tensor, mask: Tensor, dynamic: Tensor
    ) -> Tensor:
        """Pointer logits ``(B, k, n)`` after a glimpse, where every key and value is the
        static one plus a projection of the node's dynamic features ``(B, k, n, F)``:
        key_n + W f_n. That share is linear in the few features, so it enters each dot
        product through ``F`` numbers per node, and no per-rollout ``(B, k, n, d)`` keys are
        ever formed."""
        batch, k, n = mask.shape
        d, heads = self.cfg.embed_dim, self.cfg.heads
        features = dynamic.shape[-1]
        w_key, w_val, w_logit = self.project_dynamic.weight.chunk(3, dim=0)  # (d, F) each

        def per_head(w: Tensor) -> Tensor:  # (d, F) -> (H, d/H, F)
            return w.view(heads, d // heads, features)

        # query (B, H, k, d/H); scores q . (key_n + W_k f_n) = q . key_n + (q W_k) . f_n
        q_dyn = torch.einsum("bhkc,hcf->bhkf", query, per_head(w_key))
        scores = query @ cache.glimpse_key.transpose(-1, -2)
        scores = scores + torch.einsum("bhkf,bknf->bhkn", q_dyn, dynamic)
        scores = (scores / math.sqrt(d // heads)).masked_fill(mask.unsqueeze(1), float("-inf"))
        attn = torch.softmax(scores, dim=-1)  # (B, H, k, n)
        # sum_n a_n (val_n + W_v f_n) = a . val + W_v (a . f)
        mixed = torch.einsum("bhkn,bknf->bhkf", attn, dynamic)
        glimpse = attn @ cache.glimpse_val + torch.einsum("bhkf,hcf->bhkc", mixed, per_head(w_val))
        # project_out is folded into the pointer keys (see encode), so into W_logit as well.
        glimpse = glimpse.transpose(1, 2).reshape(batch, k, d)
        logits = torch.bmm(glimpse, cache.logit_key)
        w_logit = self.project_out.weight.T @ w_logit
        return logits + torch.einsum("bkf,bknf->bkn", glimpse @ w_logit, dynamic)

    def rollout(
        self,
        inst: Instance,
        k: int = 1,
        greedy: bool = True,
        first: Tensor | None = None,
        generator: torch.Generator | None = None,
        score_first: bool = False,
    ) -> Rollout:
        """Decode ``k`` solutions per instance.

        Args:
            inst: instance batch, coordinates in the unit square.
            k: rollouts per instance (sharing one encoding).
            greedy: take the most likely node; otherwise sample.
            first: ``(B, k)`` forced first nodes (POMO's multi-start); their
                choice adds nothing to ``logp``.
            generator: for sampling; ``None`` uses the global RNG.
            score_first: with ``first``, also return the policy's own log-probabilities
                of every first node (``Rollout.first_logp``), to train that choice.
        """
        cache = self.encode(inst)
        problem = self.problem
        state = problem.init_state(inst, k)
        actions: list[Tensor] = []
        logp = cache.emb.new_zeros(cache.emb.shape[0], k)
        first_logp = None
        if first is not None:
            if score_first:
                start = problem.init_state(inst, 1)
                dynamic = problem.dynamic(start) if self.project_dynamic is not None else None
                first_logp = self.log_probs(cache, problem.context(start), problem.mask(start),
                                            dynamic)[:, 0]
            state = problem.step(state, first)
            actions.append(first)
        while not problem.finished(state):
            dynamic = problem.dynamic(state) if self.project_dynamic is not None else None
            lp = self.log_probs(cache, problem.context(state), problem.mask(state), dynamic)
            action = lp.argmax(dim=-1) if greedy else sample_nodes(lp, generator)
            logp = logp + lp.gather(2, action.unsqueeze(-1)).squeeze(-1)
            state = problem.step(state, action)
            actions.append(action)
        return Rollout(actions=torch.stack(actions, dim=-1), logp=logp, first_logp=first_logp)


class AttentionCritic(nn.Module):
    """Value network for the critic baseline: its own encoder, then an MLP on the mean embedding."""

    def __init__(self, problem: RoutingProblem, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ModelConfig()
        self.problem = problem
        self.init_embed = nn.Linear(problem.node_dim, cfg.embed_dim)
        self.layers = nn.Sequential(*(_EncoderLayer(cfg) for _ in range(cfg.layers)))
        self.value = nn.Sequential(
            nn.Linear(cfg.embed_dim, cfg.embed_dim), nn.ReLU(), nn.Linear(cfg.embed_dim, 1)
        )

    def forward(self, inst: Instance) -> Tensor:
        """``(B,)`` predicted cost."""
        emb = self.layers(self.init_embed(self.problem.node_features(inst)))
        return self.value(emb.mean(dim=1)).squeeze(-1)
