"""Rectified flow (Liu et al., "Flow Straight and Fast", ICLR 2023) training loss and ODE sampler.

The sampler is **numpy only** and backend-agnostic: it calls a *denoiser*
(:class:`Denoiser` protocol; ``backends.TorchDenoiser`` or
``backends.OnnxDenoiser``) on float32 numpy arrays, so the same Euler loop,
guidance, known-frame copy, smoothing and border blending run whichever
backend evaluates the network.  Only :func:`flow_loss` (training) needs
PyTorch, imported lazily.  Never imports bpy.

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

Noise: initial noise is drawn from a ``numpy.random.Generator``
(``np.random.default_rng(seed)``) on the host, so every backend starts from
bit-identical noise.  Same seed -> identical motion on the same backend and
device; across backends (torch vs ONNX Runtime, CPU vs CUDA) the results
differ only by floating-point rounding of the network (measured and tested
in ``tests/test_model_backends.py``).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .representation import BODY_DIM, FRAME_DIM

if TYPE_CHECKING:  # torch is only needed for training
    import torch

    from .network import CoSpeechNet


class Denoiser(Protocol):
    """The network as the sampler sees it (numpy float32 in, numpy float32 out).

    ``denoise(x, t, audio, style, known, mask_f, drop_audio, drop_style) -> x1_hat``

    Args:
        x: (B, T, F) float32 noisy normalised frames at flow time t (F = ``FRAME_DIM``).
        t: (B,) float32 flow time in [0, 1].
        audio: (B, T, A) float32 features (30 fps, aligned with x).
        style: (B,) int64 style ids.
        known: (B, T, F) float32 normalised known frames (any value where mask_f = 0).
        mask_f: (B, T) float32, 1 = frame known.
        drop_audio, drop_style: (B,) bool, True = condition replaced by its null.
    Returns:
        (B, T, F) float32 predicted clean sample x1.
    """

    def __call__(self, x: np.ndarray, t: np.ndarray, audio: np.ndarray, style: np.ndarray, known: np.ndarray,
                 mask_f: np.ndarray, drop_audio: np.ndarray, drop_style: np.ndarray) -> np.ndarray: ...


def flow_loss(net: "CoSpeechNet", x1: "torch.Tensor", audio: "torch.Tensor", style: "torch.Tensor",
              mask: "torch.Tensor", *, p_drop_audio: float = 0.1, p_drop_style: float = 0.1,
              generator: "torch.Generator | None" = None, noise: tuple | None = None,
              denominators: tuple | None = None, speaker: "torch.Tensor | None" = None,
              columns: "torch.Tensor | None" = None) -> "torch.Tensor":
    """Rectified-flow regression loss on one batch (PyTorch; training only).

    Args:
        x1: (B, T, F) normalised data frames.
        audio: (B, T, A) features.  style: (B,) long.
        mask: (B, T) float, 1 = frame given to the network as known.
        noise: this batch's slice of :func:`draw_noise` for a larger batch
            (data-parallel training); None = drawn here from ``generator``.
        denominators: ``(frames, diffs)`` normalisers of the whole global
            batch (:func:`loss_denominators`); None = this batch's own.  With
            the global ones, the losses of the parts of a batch add up to the
            loss of the whole batch, so split batches train identically.
        columns: (B, F) float weights of each window's feature columns (1 =
            supervised, 0 = not; e.g. jaw-only FACEGOOD windows); None = all 1.
    Returns:
        scalar: mean squared error of the clean-sample prediction over the
        *unknown* frames (all frames when nothing is known) plus the same for
        frame differences; t ~ logit-normal(0, 1) (Esser et al., SD3, 2024).
    """
    import torch
    x0, t_raw, da_u, ds_u = draw_noise(x1.shape, generator, x1.device) if noise is None else noise
    t = torch.sigmoid(t_raw)
    xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * x1
    da = da_u < p_drop_audio
    ds = ds_u < p_drop_style
    extra = {} if speaker is None else {"speaker": speaker}
    x1_hat = net(xt, t, audio, style, x1 * mask[..., None], mask, da, ds, **extra)
    w = (1.0 - mask)[..., None]
    wd = w[:, 1:] * w[:, :-1]
    if columns is not None:
        w, wd = w * columns[:, None], wd * columns[:, None]
    den, dden = loss_denominators(mask, x1.shape[-1], columns) if denominators is None else denominators
    err = ((x1_hat - x1) ** 2 * w).sum() / den
    derr = ((torch.diff(x1_hat, dim=1) - torch.diff(x1, dim=1)) ** 2 * wd).sum() / dden
    return err + derr


def draw_noise(shape: tuple, generator: "torch.Generator | None" = None, device=None) -> tuple:
    """The random inputs of :func:`flow_loss` for a batch of ``shape`` (B, T, F):
    noise x0 (B, T, F), pre-sigmoid times (B,), and uniforms (B,) for audio and style dropout."""
    import torch
    B = shape[0]
    x0 = torch.randn(shape, generator=generator, device=device)
    t_raw = torch.randn(B, generator=generator, device=device)
    return x0, t_raw, torch.rand(B, generator=generator, device=device), torch.rand(B, generator=generator, device=device)


def loss_denominators(mask: "torch.Tensor", num_features: int, columns: "torch.Tensor | None" = None) -> tuple:
    """Normalisers of :func:`flow_loss` for ``mask`` (B, T): unknown frames x supervised
    features (``columns`` (B, F) weights, default all ``num_features``), and unknown
    consecutive pairs x supervised features (each at least 1)."""
    import torch
    w = 1.0 - mask
    wd = w[:, 1:] * w[:, :-1]
    per = columns.sum(-1) if columns is not None else torch.full_like(w[:, 0], float(num_features))
    return (w.sum(1) * per).sum().clamp_min(1.0), (wd.sum(1) * per).sum().clamp_min(1.0)


def balanced_columns(columns: "torch.Tensor") -> "torch.Tensor":
    """Column weights (B, F) under which every window weighs the same in :func:`flow_loss`.

    Window i's weights are scaled by ``mean_j n_j / n_i`` (``n`` = its number
    of supervised columns), so the total weight -- hence
    :func:`loss_denominators` of the unscaled ``columns`` -- is unchanged.
    Without it a FACEGOOD window (jaw + ARKit mouth, 33 columns) weighs
    33/432 of a BEAT2 window: 35 % of the windows gave 3 % of the gradient.
    """
    n = columns.sum(-1, keepdim=True).clamp_min(1.0)
    return columns * (n.mean() / n)


def _fix_start(x: np.ndarray, prev: np.ndarray, prev_vel: np.ndarray, width: int) -> np.ndarray:
    """Correct a run ``x`` (n, F) that follows a known frame ``prev`` moving at ``prev_vel``.

    The offset ``d`` of the first frame from the constant-velocity
    prediction and the velocity error ``e`` of the first step are removed
    with a raised-cosine weight ``w(i)`` (1 -> 0 over ``width`` frames):
    ``x[i] -= w(i) (d + e i)``, so position and velocity are continuous.
    """
    n = x.shape[0]
    i = np.arange(n, dtype=x.dtype)
    w = np.where(i < width, 0.5 * (1.0 + np.cos(np.pi * i / width)), 0.0).astype(x.dtype)
    d = x[0] - (prev + prev_vel)
    e = (x[1] - x[0]) - prev_vel if n > 1 else np.zeros_like(d)
    return x - w[:, None] * (d[None] + e[None] * i[:, None])


def blend_borders(x: np.ndarray, known: np.ndarray, mask: np.ndarray, width: int = 10) -> np.ndarray:
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
        x: (T, F) float32 sampled frames; known: (T, F) float32; mask: (T,) bool.
    Returns:
        (T, F) new array (same dtype as ``x``).
    """
    x = np.array(x, copy=True)
    known = np.asarray(known, x.dtype)
    T = x.shape[0]
    m = np.asarray(mask, bool).tolist()
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
            vl = known[a - 1] - known[a - 2] if a > 1 and m[a - 2] else np.zeros_like(known[a - 1])
            vr = known[b + 1] - known[b] if b + 1 < T and m[b + 1] else np.zeros_like(known[b])
            s_ = (np.arange(1, n + 1, dtype=x.dtype) / x.dtype.type(n + 1))[:, None]
            h00, h10 = 2 * s_ ** 3 - 3 * s_ ** 2 + 1, s_ ** 3 - 2 * s_ ** 2 + s_
            h01, h11 = -2 * s_ ** 3 + 3 * s_ ** 2, s_ ** 3 - s_ ** 2
            x[a:b] = h00 * known[a - 1] + h10 * (n + 1) * vl + h01 * known[b] + h11 * (n + 1) * vr
            continue
        if a > 0:  # known frame a-1 on the left
            v = known[a - 1] - known[a - 2] if a > 1 and m[a - 2] else np.zeros_like(known[a - 1])
            x[a:b] = _fix_start(x[a:b], known[a - 1], v, width)
        if b < T:  # known frame b on the right: same in reversed time
            v = known[b] - known[b + 1] if b + 1 < T and m[b + 1] else np.zeros_like(known[b])
            x[a:b] = _fix_start(x[a:b][::-1], known[b], v, width)[::-1]
    return x


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass along time (axis -2) of a (..., T, F) array, edges replicated.

    ``scipy.ndimage.gaussian_filter1d(mode="nearest")`` with kernel radius
    ``ceil(3 sigma)`` frames (normalised ``exp(-k^2 / (2 sigma^2))``).
    ``sigma <= 0`` returns ``x`` unchanged.  Same dtype as ``x``.
    """
    if sigma <= 0:
        return x
    x = np.asarray(x)
    return gaussian_filter1d(x, float(sigma), axis=-2, mode="nearest",
                             radius=int(math.ceil(3 * sigma))).astype(x.dtype, copy=False)


def sample(denoise: Denoiser, audio: np.ndarray, style: np.ndarray, *, known: np.ndarray | None = None,
           mask: np.ndarray | None = None, steps: int = 8, guidance: float = 2.0,
           rng: np.random.Generator | int | None = None, blend_width: int = 10, smooth_sigma: float = 0.0,
           trans_sigma: float | None = None, step_callback: Callable[[int], None] | None = None) -> np.ndarray:
    """Euler ODE sampling of one batch of windows (numpy; the network is ``denoise``).

    Args:
        denoise: a :class:`Denoiser` (e.g. ``backends.TorchDenoiser`` or
            ``backends.OnnxDenoiser``).
        audio: (B, T, A) float32 features; style: (B,) int style ids.
        known: (B, T, F) float32 normalised known frames (zeros if None,
            F = ``FRAME_DIM``); mask: (B, T) bool, True = frame known.
        steps: Euler steps, 1-50.  guidance: CFG scale (1 = off).  With
            guidance the conditional and unconditional predictions are one
            denoiser call on a batch of 2B.
        rng: ``numpy.random.Generator`` (or an int seed) for the initial
            noise, ``standard_normal((B, T, F), float32)``; None = fresh entropy.
        blend_width: frames over which border offsets are blended (0 = off).
        smooth_sigma: std (frames) of a Gaussian temporal low-pass applied to
            the sampled window (known frames included, then restored) to
            remove the frame-to-frame jitter a small, briefly trained
            denoiser leaves; 0 = off.
        trans_sigma: the same for the 3 root-translation channels (default
            ``smooth_sigma``); a walking/weight-shifting root moves slowly, so
            it can take a wider kernel.
        step_callback: called with the step index after every step (may raise
            to abort).
    Returns:
        (B, T, F) float32 normalised frames; frames with ``mask`` True are
        exactly ``known`` (copied, bit-identical).
    Raises:
        ValueError: steps outside 1..50.
    """
    if not 1 <= int(steps) <= 50:
        raise ValueError(f"steps must be in 1..50, got {steps}")
    steps = int(steps)
    audio = np.ascontiguousarray(audio, np.float32)
    B, T, _ = audio.shape
    F = FRAME_DIM if known is None else known.shape[-1]
    known = np.zeros((B, T, F), np.float32) if known is None else np.asarray(known, np.float32)
    mask = np.zeros((B, T), bool) if mask is None else np.asarray(mask, bool)
    style = np.asarray(style, np.int64).reshape(B)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    mf = mask.astype(np.float32)
    kin = known * mf[..., None]
    x = rng.standard_normal((B, T, F), dtype=np.float32)
    use_cfg = abs(guidance - 1.0) > 1e-6
    if use_cfg:  # constant inputs of the batched conditional + unconditional call
        a2, s2 = np.concatenate([audio, audio]), np.concatenate([style, style])
        k2, m2 = np.concatenate([kin, kin]), np.concatenate([mf, mf])
        drop2 = np.concatenate([np.zeros(B, bool), np.ones(B, bool)])
    else:
        drop1 = np.zeros(B, bool)
    dt = 1.0 / steps
    g = np.float32(guidance)
    for k in range(steps):
        t = np.full((B,), k * dt, np.float32)
        if use_cfg:
            v2 = np.asarray(denoise(np.concatenate([x, x]), np.concatenate([t, t]), a2, s2, k2, m2, drop2, drop2),
                            np.float32)
            xc, xu = v2[:B], v2[B:]
            x1_hat = xu + g * (xc - xu)
        else:
            x1_hat = np.asarray(denoise(x, t, audio, style, kin, mf, drop1, drop1), np.float32)
        x = x + np.float32(dt / (1.0 - k * dt)) * (x1_hat - x)  # Euler step of v = (x1_hat - x_t) / (1 - t)
        if step_callback is not None:
            step_callback(k)
    x = np.where(mask[..., None], known, x)
    ts = smooth_sigma if trans_sigma is None else trans_sigma
    x = smooth_take(x, smooth_sigma, ts)
    out = np.empty_like(x)
    for b in range(B):
        xb = blend_borders(x[b], known[b], mask[b], blend_width) if blend_width > 0 and mask[b].any() else x[b]
        out[b] = np.where(mask[b][:, None], known[b], xb)
    return out


def smooth_take(x: np.ndarray, smooth_sigma: float, trans_sigma: float,
                face_sigma: float | None = None) -> np.ndarray:
    """:func:`gaussian_smooth` of (..., T, FRAME_DIM) frames: ``trans_sigma`` for the
    3 root-translation columns, ``face_sigma`` (default ``smooth_sigma``) for the
    face block (jaw, eyes, expressions: a mouth smoothed like the body loses its
    closures), ``smooth_sigma`` for all others (new array if any σ > 0)."""
    face_sigma = smooth_sigma if face_sigma is None else face_sigma
    if smooth_sigma <= 0 and trans_sigma <= 0 and face_sigma <= 0:
        return x
    tr = slice(BODY_DIM - 3, BODY_DIM)
    x_tr = gaussian_smooth(x[..., tr], trans_sigma)
    x_face = gaussian_smooth(x[..., BODY_DIM:], face_sigma)
    y = np.array(gaussian_smooth(x, smooth_sigma), copy=True)
    y[..., tr] = x_tr
    y[..., BODY_DIM:] = x_face
    return y
