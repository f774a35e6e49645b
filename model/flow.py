"""Rectified flow (Liu et al., "Flow Straight and Fast", ICLR 2023) training loss and ODE sampler.

Pure PyTorch; never imports bpy.

Convention: ``x_t = (1 - t) * noise + t * data``, ``t`` in [0, 1]; the
network predicts the constant velocity ``data - noise``; sampling integrates
``dx/dt = v`` from t = 0 (Gaussian noise) to t = 1 with Euler steps.

Classifier-free guidance (Ho & Salimans 2022): ``v = v_u + g * (v_c - v_u)``
with ``v_u`` the prediction with audio and style dropped (known frames are
kept in both); ``g = 1`` is plain conditional sampling.
"""
from __future__ import annotations

from typing import Callable

import torch

from .network import CoSpeechNet


def flow_loss(net: CoSpeechNet, x1: torch.Tensor, audio: torch.Tensor, style: torch.Tensor,
              mask: torch.Tensor, *, p_drop_audio: float = 0.1, p_drop_style: float = 0.1,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Rectified-flow regression loss on one batch.

    Args:
        x1: (B, T, F) normalised data frames.
        audio: (B, T, A) features.  style: (B,) long.
        mask: (B, T) float, 1 = frame given to the network as known.
    Returns:
        scalar: mean squared velocity error over the *unknown* frames (all
        frames when nothing is known), t ~ logit-normal(0, 1) (Esser et al.,
        SD3, 2024).
    """
    B = x1.shape[0]
    dev = x1.device
    x0 = torch.randn(x1.shape, generator=generator, device=dev)
    t = torch.sigmoid(torch.randn(B, generator=generator, device=dev))
    xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * x1
    da = torch.rand(B, generator=generator, device=dev) < p_drop_audio
    ds = torch.rand(B, generator=generator, device=dev) < p_drop_style
    v = net(xt, t, audio, style, x1 * mask[..., None], mask, da, ds)
    w = (1.0 - mask)[..., None]
    err = ((v - (x1 - x0)) ** 2 * w).sum() / (w.sum() * x1.shape[-1]).clamp_min(1.0)
    return err


def blend_borders(x: torch.Tensor, known: torch.Tensor, mask: torch.Tensor, width: int = 6) -> torch.Tensor:
    """Remove the jump where generated frames meet known frames.

    For every run of unknown frames adjacent to a known frame, the offset
    between the first (last) generated frame and the value extrapolated from
    the known side with constant velocity is subtracted with a linearly
    decaying weight over ``width`` frames.  Known frames are not touched.

    Args:
        x: (T, F) sampled frames; known: (T, F); mask: (T,) bool.
    Returns:
        (T, F) new tensor.
    """
    x = x.clone()
    T = x.shape[0]
    m = mask.bool().tolist()
    runs, i = [], 0
    while i < T:
        if not m[i]:
            j = i
            while j < T and not m[j]:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    for a, b in runs:
        n = b - a
        ramp = torch.clamp(1.0 - torch.arange(n, dtype=x.dtype, device=x.device) / width, min=0.0)
        if a > 0:  # known frame a-1 on the left
            pred = known[a - 1] + ((known[a - 1] - known[a - 2]) if a > 1 and m[a - 2] else 0.0)
            x[a:b] -= ramp[:, None] * (x[a] - pred)[None]
        if b < T:  # known frame b on the right
            pred = known[b] - ((known[b + 1] - known[b]) if b + 1 < T and m[b + 1] else 0.0)
            x[a:b] -= ramp.flip(0)[:, None] * (x[b - 1] - pred)[None]
    return x


@torch.no_grad()
def sample(net: CoSpeechNet, audio: torch.Tensor, style: torch.Tensor, *, known: torch.Tensor | None = None,
           mask: torch.Tensor | None = None, steps: int = 8, guidance: float = 2.0,
           generator: torch.Generator | None = None, blend_width: int = 6,
           step_callback: Callable[[int], None] | None = None) -> torch.Tensor:
    """Euler ODE sampling of one batch of windows.

    Args:
        audio: (B, T, A) features; style: (B,) long.
        known: (B, T, F) normalised known frames (zeros if None); mask: (B, T) bool.
        steps: Euler steps, 1-50.  guidance: CFG scale (1 = off).
        generator: torch.Generator on ``audio.device`` -> deterministic noise.
        blend_width: frames over which border offsets are blended (0 = off).
        step_callback: called with the step index after every step.
    Returns:
        (B, T, F) normalised frames; frames with ``mask`` True are exactly
        ``known`` (copied, bit-identical).
    Raises:
        ValueError: steps outside 1..50.
    """
    if not 1 <= int(steps) <= 50:
        raise ValueError(f"steps must be in 1..50, got {steps}")
    B, T, _ = audio.shape
    F = net.body_out[1].out_features + net.face_out[1].out_features
    dev = audio.device
    if known is None:
        known = torch.zeros(B, T, F, device=dev)
    if mask is None:
        mask = torch.zeros(B, T, dtype=torch.bool, device=dev)
    mask = mask.bool()
    mf = mask.float()
    kin = known * mf[..., None]
    x = torch.randn(B, T, F, generator=generator, device=dev)
    use_cfg = abs(guidance - 1.0) > 1e-6
    ones = torch.ones(B, dtype=torch.bool, device=dev)
    dt = 1.0 / steps
    for k in range(int(steps)):
        t = torch.full((B,), k * dt, device=dev)
        if use_cfg:
            v2 = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([audio, audio]), torch.cat([style, style]),
                     torch.cat([kin, kin]), torch.cat([mf, mf]), torch.cat([~ones, ones]), torch.cat([~ones, ones]))
            vc, vu = v2[:B], v2[B:]
            v = vu + guidance * (vc - vu)
        else:
            v = net(x, t, audio, style, kin, mf)
        x = x + dt * v
        if step_callback is not None:
            step_callback(k)
    out = []
    for b in range(B):
        xb = blend_borders(x[b], known[b], mask[b], blend_width) if blend_width > 0 and mask[b].any() else x[b]
        out.append(torch.where(mask[b][:, None], known[b], xb))
    return torch.stack(out)
