"""The action expert: FiLM-DINOv2 + Llama-style transformer + MLP head, trained by flow matching.

Sequence ``[vision (P * n_img) | latent (N) | state (0/1) | action (H)]``; velocity read from the
last H hidden states through ``action_head``. Flow convention (upstream): t = 0 noise,
t = 1 data, ``psi_t = (1 - (1 - s) t) x0 + t x1``, target ``x1 - (1 - s) x0`` with s = 1e-3,
training times ``t = 0.999 (1 - Beta(1.5, 1))``, inference 10 forward-Euler steps.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from vlaeval.models.instructvla.config import InstructVLAConfig
from vlaeval.models.instructvla.expert_transformer import VideoGPT, block_attention_bias
from vlaeval.models.instructvla.film_dino import FiLMDino


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float) -> torch.Tensor:
    """``[sin(t f), cos(t f)]`` with ``f_k = exp(-k ln(max_period) / (dim/2 - 1))`` (upstream formula)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=t.dtype) * -(math.log(max_period) / (half - 1)))
    angles = t[:, None] * freqs[None, :]
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


def two_layer_mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.SiLU(), nn.Linear(d_out, d_out))


class ActionEncoder(nn.Module):
    def __init__(self, dim: int, action_dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(action_dim, dim)
        self.linear_2 = nn.Linear(2 * dim, dim)
        self.nonlinearity = nn.SiLU()
        self.linear_3 = nn.Linear(dim, dim)

    def forward(self, actions: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        emb = self.linear_1(actions)
        time = time_emb[:, None].expand(-1, actions.shape[1], -1)
        return self.linear_3(self.nonlinearity(self.linear_2(torch.cat([time, emb], dim=-1))))


def sample_flow_time(batch: int, cfg: InstructVLAConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """``t = t_max (1 - z)``, ``z ~ Beta(a, 1)`` drawn by inverse CDF (``z = u^(1/a)``) so a generator can seed it."""
    u = torch.rand(batch, generator=generator)
    return cfg.flow_t_max * (1.0 - u.pow(1.0 / cfg.flow_beta_alpha))


class ActionExpert(nn.Module):
    """Upstream ``ActionModel`` (``ActionModelWithState`` when ``use_state``), same parameter names."""

    def __init__(self, cfg: InstructVLAConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.expert.hidden_size
        token = cfg.llm.hidden_size
        horizon = cfg.chunk_size
        if cfg.action_head_narrowest < cfg.chunk_values:
            warnings.warn(
                f"InstructVLA config: the action head narrows to {cfg.action_head_narrowest} values but predicts "
                f"{cfg.chunk_values} ({cfg.chunk_size}x{cfg.action_dim}); flow matching cannot pass the noise through "
                f"and will not fit (use expert.hidden_size >= {2 * cfg.chunk_values})",
                stacklevel=2,
            )
        self.VideoGPT = VideoGPT(cfg.expert)
        self.action_head = nn.Sequential(
            nn.Linear(dim * horizon, dim * 4),
            nn.SiLU(),
            nn.Linear(dim * 4, dim * 2),
            nn.SiLU(),
            nn.Linear(dim * 2, dim // 2),
            nn.SiLU(),
            nn.Linear(dim // 2, horizon * cfg.action_dim),
        )
        self.film_vision_model = FiLMDino(cfg.dino, token)
        self.visual_projector = two_layer_mlp(cfg.dino.hidden_size, dim)
        self.cog_projector = two_layer_mlp(token, dim)
        self.action_embed = ActionEncoder(dim, cfg.action_dim)
        if cfg.use_state:
            self.state_embed = two_layer_mlp(cfg.state_dim, dim)

    def condition(
        self, latents: torch.Tensor, dino_pixels: torch.Tensor, proprio: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, int]:
        """Conditioning tokens ``[vision | latent | (state)]`` and the vision token count.

        ``dino_pixels`` is ``(B * n_img, 3, S, S)``, the images of one sample consecutive.
        """
        latents = latents.to(self.cog_projector[0].weight.dtype)
        batch = latents.shape[0]
        n_img = dino_pixels.shape[0] // batch
        visual = self.film_vision_model(dino_pixels, latents.repeat_interleave(n_img, dim=0))
        patches, width = visual.shape[1], visual.shape[2]
        visual = visual.view(batch, n_img, patches, width).permute(0, 2, 1, 3).reshape(batch, patches * n_img, width)
        parts = [self.visual_projector(visual), self.cog_projector(latents)]
        if self.cfg.use_state:
            if proprio is None:
                raise ValueError("this checkpoint uses robot state: proprio is required")
            parts.append(self.state_embed(proprio)[:, None])
        return torch.cat(parts, dim=1), patches * n_img

    def velocity(self, cond: torch.Tensor, n_vis: int, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        dim = self.cfg.expert.hidden_size
        time = sinusoidal_embedding(t.float(), dim, self.cfg.time_max_period).to(cond.dtype)
        tokens = torch.cat([cond, self.action_embed(x_t.to(cond.dtype), time)], dim=1)
        groups = (n_vis, cond.shape[1] - n_vis, x_t.shape[1])
        bias = block_attention_bias(groups, self.cfg.expert.mask_mode, tokens.dtype, tokens.device)
        hidden = self.VideoGPT.model(tokens, bias)[:, -x_t.shape[1] :]
        return self.action_head(hidden.reshape(hidden.shape[0], -1)).view(x_t.shape)

    def loss(
        self,
        latents: torch.Tensor,
        dino_pixels: torch.Tensor,
        actions: torch.Tensor,
        proprio: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Flow-matching MSE over all ``B * H * D`` elements."""
        cond, n_vis = self.condition(latents, dino_pixels, proprio)
        x1 = actions.to(cond.dtype)
        if noise is None:
            noise = torch.randn(x1.shape, generator=generator).to(x1)
        if t is None:
            t = sample_flow_time(x1.shape[0], self.cfg, generator)
        t = t.to(x1)
        s = self.cfg.flow_sigma_min
        psi = (1 - (1 - s) * t[:, None, None]) * noise + t[:, None, None] * x1
        target = x1 - (1 - s) * noise
        return torch.mean((self.velocity(cond, n_vis, psi, t) - target) ** 2)

    @torch.no_grad()
    def sample(
        self,
        latents: torch.Tensor,
        dino_pixels: torch.Tensor,
        proprio: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """Forward Euler from t = 0 (noise) to 1; ``noise`` ``(B, H, D)`` fixes the start point.

        The state ``x`` and time ``t`` stay float32 whatever the weights' dtype: in bf16 the ten
        ``t += 0.1`` steps and the ``x`` updates would otherwise round at every step.
        """
        cond, n_vis = self.condition(latents, dino_pixels, proprio)
        shape = (latents.shape[0], self.cfg.chunk_size, self.cfg.action_dim)
        x = (noise if noise is not None else torch.randn(shape)).to(device=cond.device, dtype=torch.float32)
        steps = steps or self.cfg.num_inference_steps
        dt = 1.0 / steps
        t = torch.zeros(shape[0], device=cond.device, dtype=torch.float32)
        for _ in range(steps):
            x = x + dt * self.velocity(cond, n_vis, x, t).float()
            t = t + dt
        return x
