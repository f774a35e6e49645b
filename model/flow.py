"""Rectified flow (Liu et al., "Flow Straight and Fast", ICLR 2023) training loss and ODE sampler.

Pure PyTorch; never imports bpy.

Convention: ``x_t = (1 - t) * noise + t * data``, ``t`` in [0, 1]; sampling
integrates ``dx/dt = v`` from t = 0 (Gaussian noise) to t = 1 with Euler
steps.  The network is parameterised to predict the clean sample
``x1_hat`` (as MDM, Tevet et al. 2023, does for motion diffusion); the
rectified-flow velocity is ``v = (x1_hat - x_t) / (1 - t)``, which is the
same ODE as predicting ``data - noise`` directly, but on one hour of CPU
training on 51 s of capture the clean-sample parameterisation gives smooth
motion while the velocity parameterisation still left visible noise.  The
loss is MSE on ``x1`` plus MSE on its frame-to-frame differences (MDM's
velocity loss).

Classifier-free guidance (Ho & Salimans 2022):
``x1 = x1_u + g * (x1_c - x1_u)`` (equivalently on ``v`` for the same
``x_t``) with ``x1_u`` the prediction with audio and style dropped (known
frames are kept in both); ``g = 1`` is plain conditional sampling.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .network import CoSpeechNet
from .representation import BODY_DIM


def flow_loss(net: CoSpeechNet, x1: torch.Tensor, audio: torch.Tensor, style: torch.Tensor,
              mask: torch.Tensor, *, p_drop_audio: float = 0.1, p_drop_style: float = 0.1,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Rectified-flow regression loss on one batch.

    Args:
        x1: (B, T, F) normalised data frames.
        audio: (B, T, A) features.  style: (B,) long.
        mask: (B, T) float, 1 = frame given to the network as known.
    Returns:
        scalar: mean squared error of the clean-sample prediction over the
        *unknown* frames (all frames when nothing is known) plus the same for
        frame differences; t ~ logit-normal(0, 1) (Esser et al., SD3, 2024).
    """
    B = x1.shape[0]
    dev = x1.device
    x0 = torch.randn(x1.shape, generator=generator, device=dev)
    t = torch.sigmoid(torch.randn(B, generator=generator, device=dev))
    xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * x1
    da = torch.rand(B, generator=generator, device=dev) < p_drop_audio
    ds = torch.rand(B, generator=generator, device=dev) < p_drop_style
    x1_hat = net(xt, t, audio, style, x1 * mask[..., None], mask, da, ds)
    w = (1.0 - mask)[..., None]
    err = ((x1_hat - x1) ** 2 * w).sum() / (w.sum() * x1.shape[-1]).clamp_min(1.0)
    wd = w[:, 1:] * w[:, :-1]
    derr = ((torch.diff(x1_hat, dim=1) - torch.diff(x1, dim=1)) ** 2 * wd).sum() / (
        wd.sum() * x1.shape[-1]).clamp_min(1.0)
    return err + derr


def _fix_start(x: torch.Tensor, prev: torch.Tensor, prev_vel: torch.Tensor, width: int) -> torch.Tensor:
    """Correct a run ``x`` (n, F) that follows a known frame ``prev`` moving at ``prev_vel``.

    The offset ``d`` of the first frame from the constant-velocity
    prediction and the velocity error ``e`` of the first step are removed
    with a raised-cosine weight ``w(i)`` (1 -> 0 over ``width`` frames):
    ``x[i] -= w(i) (d + e i)``, so position and velocity are continuous.
    """
    n = x.shape[0]
    i = torch.arange(n, dtype=x.dtype, device=x.device)
    w = torch.where(i < width, 0.5 * (1.0 + torch.cos(math.pi * i / width)), torch.zeros_like(i))
    d = x[0] - (prev + prev_vel)
    e = (x[1] - x[0]) - prev_vel if n > 1 else torch.zeros_like(d)
    return x - w[:, None] * (d[None] + e[None] * i[:, None])


def blend_borders(x: torch.Tensor, known: torch.Tensor, mask: torch.Tensor, width: int = 10) -> torch.Tensor:
    """Make generated runs join the known frames with continuous position and velocity.

    For every run of unknown frames next to a known frame, the position
    offset and the velocity mismatch with respect to the known side (its
    last velocity, or zero if only one known frame) are subtracted with a
    raised-cosine weight decaying over ``width`` frames (see
    :func:`_fix_start`); the right border is handled the same way in reversed
    time.  Gaps shorter than ``width`` between two known frames are replaced
    by the cubic Hermite curve matching both sides' positions and velocities.
    Known frames are not touched.

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
        if 0 < a and b < T and n < width:  # short gap: cubic Hermite between the known sides
            vl = known[a - 1] - known[a - 2] if a > 1 and m[a - 2] else torch.zeros_like(known[a - 1])
            vr = known[b + 1] - known[b] if b + 1 < T and m[b + 1] else torch.zeros_like(known[b])
            s_ = (torch.arange(1, n + 1, dtype=x.dtype, device=x.device) / (n + 1))[:, None]
            h00, h10 = 2 * s_ ** 3 - 3 * s_ ** 2 + 1, s_ ** 3 - 2 * s_ ** 2 + s_
            h01, h11 = -2 * s_ ** 3 + 3 * s_ ** 2, s_ ** 3 - s_ ** 2
            x[a:b] = h00 * known[a - 1] + h10 * (n + 1) * vl + h01 * known[b] + h11 * (n + 1) * vr
            continue
        if a > 0:  # known frame a-1 on the left
            v = known[a - 1] - known[a - 2] if a > 1 and m[a - 2] else torch.zeros_like(known[a - 1])
            x[a:b] = _fix_start(x[a:b], known[a - 1], v, width)
        if b < T:  # known frame b on the right: same in reversed time
            v = known[b] - known[b + 1] if b + 1 < T and m[b + 1] else torch.zeros_like(known[b])
            x[a:b] = _fix_start(x[a:b].flip(0), known[b], v, width).flip(0)
    return x


def gaussian_smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian low-pass along time (dim -2) of a (B, T, F) tensor, edges replicated.

    Kernel: normalised ``exp(-k^2 / (2 sigma^2))`` for ``|k| <= ceil(3 sigma)``
    frames (as ``scipy.ndimage.gaussian_filter1d`` with ``mode="nearest"``).
    """
    if sigma <= 0:
        return x
    r = int(math.ceil(3 * sigma))
    k = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-k ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).view(1, 1, -1).repeat(x.shape[-1], 1, 1)
    y = torch.nn.functional.pad(x.transpose(1, 2), (r, r), mode="replicate")
    return torch.nn.functional.conv1d(y, k, groups=x.shape[-1]).transpose(1, 2)


@torch.no_grad()
def sample(net: CoSpeechNet, audio: torch.Tensor, style: torch.Tensor, *, known: torch.Tensor | None = None,
           mask: torch.Tensor | None = None, steps: int = 8, guidance: float = 2.0,
           generator: torch.Generator | None = None, blend_width: int = 10, smooth_sigma: float = 0.0,
           trans_sigma: float | None = None, step_callback: Callable[[int], None] | None = None) -> torch.Tensor:
    """Euler ODE sampling of one batch of windows.

    Args:
        audio: (B, T, A) features; style: (B,) long.
        known: (B, T, F) normalised known frames (zeros if None); mask: (B, T) bool.
        steps: Euler steps, 1-50.  guidance: CFG scale (1 = off).
        generator: torch.Generator on ``audio.device`` -> deterministic noise.
        blend_width: frames over which border offsets are blended (0 = off).
        smooth_sigma: std (frames) of a Gaussian temporal low-pass applied to
            the sampled window (known frames included, then restored) to
            remove the frame-to-frame jitter a small, briefly trained
            denoiser leaves; 0 = off.
        trans_sigma: the same for the 3 root-translation channels (default
            ``smooth_sigma``); a walking/weight-shifting root moves slowly, so
            it can take a wider kernel.
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
            xc, xu = v2[:B], v2[B:]
            x1_hat = xu + guidance * (xc - xu)
        else:
            x1_hat = net(x, t, audio, style, kin, mf)
        x = x + dt * (x1_hat - x) / (1.0 - k * dt)  # Euler step of v = (x1_hat - x_t) / (1 - t)
        if step_callback is not None:
            step_callback(k)
    x = torch.where(mask[..., None], known, x)
    ts = smooth_sigma if trans_sigma is None else trans_sigma
    tr = slice(BODY_DIM - 3, BODY_DIM)
    x_tr = gaussian_smooth(x[..., tr], ts)
    x = gaussian_smooth(x, smooth_sigma)
    x[..., tr] = x_tr
    out = []
    for b in range(B):
        xb = blend_borders(x[b], known[b], mask[b], blend_width) if blend_width > 0 and mask[b].any() else x[b]
        out.append(torch.where(mask[b][:, None], known[b], xb))
    return torch.stack(out)
