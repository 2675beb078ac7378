"""The action expert's Llama-style transformer ("VideoGPT"), without token embeddings or LM head.

Parameter names follow HF ``LlamaForCausalLM`` (``model.layers.i.self_attn.q_proj`` ...), as
upstream built it with ``AutoModelForCausalLM.from_config`` and replaced ``embed_tokens`` /
``lm_head`` by ``Identity``. Written out here so the attention-mask semantics are explicit
and do not change with the installed transformers version.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlaeval.models.instructvla.config import ExpertSettings


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """HF Llama RoPE; frequencies computed in float32 on the fly (no buffer to be cast to bf16)."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        self.head_dim, self.theta = head_dim, theta

    def forward(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.int64, device=device).float() / self.head_dim
        inv_freq = 1.0 / (self.theta**exponents)
        freqs = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


class ExpertAttention(nn.Module):
    def __init__(self, cfg: ExpertSettings):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.dropout = cfg.attention_dropout
        self.q_proj = nn.Linear(cfg.hidden_size, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], bias: torch.Tensor | None) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rope
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        mask = None if bias is None else bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))


class ExpertMLP(nn.Module):
    def __init__(self, cfg: ExpertSettings):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ExpertSettings):
        super().__init__()
        self.self_attn = ExpertAttention(cfg)
        self.mlp = ExpertMLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], bias: torch.Tensor | None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, bias)
        return x + self.mlp(self.post_attention_layernorm(x))


class ExpertBackbone(nn.Module):
    """``LlamaModel`` minus ``embed_tokens``: returns the post-norm last hidden state."""

    def __init__(self, cfg: ExpertSettings):
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(cfg.hidden_size // cfg.num_attention_heads, cfg.rope_theta)
        self.gradient_checkpointing = False

    def forward(self, inputs_embeds: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        rope = self.rotary_emb(inputs_embeds.shape[1], inputs_embeds.device, inputs_embeds.dtype)
        x = inputs_embeds
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x, rope, bias, use_reentrant=False)
            else:
                x = layer(x, rope, bias)
        return self.norm(x)


class VideoGPT(nn.Module):
    """Holder giving upstream's ``VideoGPT.model.*`` parameter names."""

    def __init__(self, cfg: ExpertSettings):
        super().__init__()
        self.model = ExpertBackbone(cfg)


def block_attention_bias(
    group_sizes: tuple[int, int, int], mode: str, dtype: torch.dtype, device: torch.device | None = None
) -> torch.Tensor | None:
    """Additive ``(L, L)`` attention term for the sequence ``[vision | latent(+state) | action]``.

    Allowed pattern: vision rows see vision; latent rows see vision + latent; action rows see
    everything. ``bias`` adds +1 to allowed logits and 0 elsewhere (what upstream's boolean
    mask does under transformers 4.51 eager attention); ``block`` masks the rest with -inf;
    ``none`` returns None (full attention).
    """
    if mode == "none":
        return None
    vis, cond, act = group_sizes
    total = vis + cond + act
    allowed = torch.zeros(total, total, dtype=torch.bool, device=device)
    allowed[:vis, :vis] = True
    allowed[vis : vis + cond, : vis + cond] = True
    allowed[vis + cond :, :] = True
    if mode == "bias":
        return allowed.to(dtype)
    if mode == "block":
        return torch.zeros(total, total, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)
    raise ValueError(f"unknown mask mode {mode!r} (expected bias, block or none)")
