"""Artist dials on a generated take: intensities and smoothing per part.

Pure numpy/scipy on a :class:`MotionClip` (never imports bpy); the add-on
re-bakes the result (``addon/take_adjust.py``).

* **Intensity** of a part scales each joint's rotation *about that joint's
  mean rotation over the take*, on the rotation manifold: with R̄ the
  chordal L2 mean (``scipy.spatial.transform.Rotation.mean``, Markley et al.
  2007) and R_t = R̄ · exp(ω_t), the adjusted rotation is R̄ · exp(s ω_t)
  (s = percent / 100): 0 holds the mean pose, 1 is the take itself (returned
  bit-identical), 2 doubles every rotation angle about the mean (the geodesic
  extrapolation, not component-wise quaternion scaling).  Translations and
  FLAME expression coefficients are scaled about their mean linearly.
* **Smoothing** (σ in frames at 30 fps) is a Gaussian low-pass: rotations as
  sign-continuous quaternions filtered per component and renormalised (a
  first-order approximation of the rotation mean over the kernel), the rest
  linearly.
* **Lip closure emphasis** (0-100 %) closes the jaw where the *speech*
  closes: the jaw rotation is scaled toward closed (the geodesic to the
  identity) by ``closure`` × the take's closure cue
  (``Generator.closure_cue``: the phones' eased P B M, or where no P B M
  was decoded :func:`model.features.closure_cue`, energy dips of stops and
  nasals between vowels), so P, B, M shut and vowels stay open.  The cue is
  stored with the take; without one the dial does nothing (the caller says
  so).  An earlier version closed the jaw at the motion's
  own minima, which lowered the phoneme contrast: the generated minima are
  not where the bilabials are.
* The **ARKit mouth** (``MotionClip.arkit_mouth``) follows the *Mouth* dial
  (weights scaled about 0, the rest shape, and clipped to [0, 1]), face
  smoothing, and *Lip Closure* (:func:`model.mouth.close_lips` with closure
  ``closure`` × cue: the lips meet, press and roll in).
* Frames in ``keep`` are returned exactly as they were (the user's locks).

Parts (SMPL-X joint indices, ``model/skeleton.py``): *mouth* = jaw (22);
*head* = neck, head (12, 15); *gesture* = spine1-3, collars, shoulders,
elbows, wrists and fingers (3, 6, 9, 13, 14, 16-21, 25-54); *root* = pelvis
rotation (0) and translation; *expression* = the 100 FLAME coefficients.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from .arkit import BLINKS_PER_MINUTE
from .motion import MotionClip

MOUTH = (22,)
HEAD = (12, 15)
GESTURE = (3, 6, 9, 13, 14, 16, 17, 18, 19, 20, 21) + tuple(range(25, 55))
ROOT = (0,)
FACE_JOINTS = (22, 23, 24)
BODY_JOINTS = tuple(j for j in range(55) if j not in FACE_JOINTS)


@dataclass
class Adjustments:
    """Dial values.  Intensities in percent (0-200, 100 = unchanged);
    smoothing σ in frames at 30 fps (0 = none)."""

    mouth: float = 100.0
    expression: float = 100.0
    head: float = 100.0
    gesture: float = 100.0
    root: float = 100.0
    smooth_face: float = 0.0
    smooth_body: float = 0.0
    closure: float = 0.0
    #: blinks per minute of the take's ARKit output (eyeBlink*; 0-40); the
    #: SMPL-X/FLAME motion has no blink channel, so :func:`adjust` ignores it.
    blink_rate: float = BLINKS_PER_MINUTE

    def is_identity(self) -> bool:
        return self == Adjustments()

    def clamped(self) -> "Adjustments":
        d = asdict(self)
        for f in fields(self):
            hi = (10.0 if f.name.startswith("smooth") else 100.0 if f.name == "closure"
                  else 40.0 if f.name == "blink_rate" else 200.0)
            d[f.name] = float(min(max(float(d[f.name]), 0.0), hi))
        return Adjustments(**d)

    def to_dict(self) -> dict:
        return asdict(self)


#: Named presets (values documented in the README).
PRESETS: dict[str, Adjustments] = {
    "SUBTLE": Adjustments(mouth=80, expression=70, head=60, gesture=60, root=50, smooth_face=0.5, smooth_body=1.5,
                          blink_rate=12),
    "NATURAL": Adjustments(),
    "BROADCAST": Adjustments(mouth=110, expression=90, head=70, gesture=80, root=40, smooth_face=0.0,
                             smooth_body=1.0, blink_rate=12),
    "CARTOON": Adjustments(mouth=160, expression=150, head=140, gesture=150, root=120, smooth_face=0.0,
                           smooth_body=0.5, blink_rate=20),
}


def scale_rotations(rv: np.ndarray, s: float) -> np.ndarray:
    """(T, 3) axis-angle -> the same rotations scaled by ``s`` about their mean (see module doc)."""
    if s == 1.0:
        return rv
    rot = Rotation.from_rotvec(np.asarray(rv, np.float64))
    mean = rot.mean()
    rel = (mean.inv() * rot).as_rotvec()
    return (mean * Rotation.from_rotvec(rel * s)).as_rotvec()


def smooth_rotations(rv: np.ndarray, sigma: float) -> np.ndarray:
    """(T, 3) axis-angle, Gaussian-smoothed over time (σ frames) as quaternions."""
    if sigma <= 0 or len(rv) < 2:
        return rv
    q = Rotation.from_rotvec(np.asarray(rv, np.float64)).as_quat()
    flip = np.cumsum(np.r_[False, np.einsum("ij,ij->i", q[1:], q[:-1]) < 0]) % 2 == 1
    q[flip] *= -1
    q = gaussian_filter1d(q, sigma, axis=0, mode="nearest")
    return Rotation.from_quat(q / np.linalg.norm(q, axis=1, keepdims=True)).as_rotvec()


def closure_factor(cue: np.ndarray, amount: float, num_frames: int, fps: float) -> np.ndarray:
    """(T,) factor in [1 - amount, 1] for the jaw rotation from the closure
    ``cue`` (30 fps, :func:`model.features.closure_cue`), resampled to a clip
    of ``num_frames`` at ``fps``."""
    cue = np.asarray(cue, np.float64)
    t = np.arange(num_frames) / float(fps)
    c = np.interp(t, np.arange(len(cue)) / 30.0, cue) if len(cue) else np.zeros(num_frames)
    return 1.0 - float(amount) * np.clip(c, 0.0, 1.0)


def _scale_linear(x: np.ndarray, s: float) -> np.ndarray:
    if s == 1.0:
        return x
    m = x.mean(axis=0, keepdims=True)
    return m + (x - m) * s


def adjust(clip: MotionClip, adj: Adjustments, keep: np.ndarray | None = None,
           cue: np.ndarray | None = None) -> MotionClip:
    """A new clip with ``adj`` applied (``clip`` is not modified).

    Args:
        clip: the take's raw model output (any fps; σ is in frames of it).
        adj: dial values (clamped to their ranges).
        keep: (T,) bool, frames copied unchanged from ``clip``.
        cue: the take's closure cue at 30 fps (:func:`model.features.closure_cue`);
            None: the *Lip Closure* dial has no effect.
    Returns:
        MotionClip of the same shape and dtypes; identical arrays when ``adj``
        is the identity.
    """
    adj = adj.clamped()
    poses = np.array(clip.poses, copy=True)
    exp = np.array(clip.expressions, copy=True)
    trans = np.array(clip.trans, copy=True)
    T = clip.num_frames
    mouth = None if clip.arkit_mouth is None else np.array(clip.arkit_mouth, copy=True)
    if adj.is_identity() or T == 0:
        return MotionClip(poses, exp, trans, clip.fps, arkit_mouth=mouth)
    rv = poses.reshape(T, -1, 3).astype(np.float64)
    for joints, pct in ((MOUTH, adj.mouth), (HEAD, adj.head), (GESTURE, adj.gesture), (ROOT, adj.root)):
        for j in joints:
            rv[:, j] = scale_rotations(rv[:, j], pct / 100.0)
    for joints, sigma in ((FACE_JOINTS, adj.smooth_face), (BODY_JOINTS, adj.smooth_body)):
        for j in joints:
            rv[:, j] = smooth_rotations(rv[:, j], sigma)
    if adj.closure > 0 and cue is not None:
        rv[:, MOUTH[0]] *= closure_factor(cue, adj.closure / 100.0, T, clip.fps)[:, None]
    out_exp = _scale_linear(exp.astype(np.float64), adj.expression / 100.0)
    out_trans = _scale_linear(trans.astype(np.float64), adj.root / 100.0)
    if adj.smooth_face > 0:
        out_exp = gaussian_filter1d(out_exp, adj.smooth_face, axis=0, mode="nearest")
    if adj.smooth_body > 0:
        out_trans = gaussian_filter1d(out_trans, adj.smooth_body, axis=0, mode="nearest")
    if mouth is not None:
        mouth = np.clip(mouth.astype(np.float64) * adj.mouth / 100.0, 0.0, 1.0)
        if adj.smooth_face > 0:
            mouth = gaussian_filter1d(mouth, adj.smooth_face, axis=0, mode="nearest")
        if adj.closure > 0 and cue is not None:
            from .mouth import close_lips
            mouth = close_lips(mouth, 1.0 - closure_factor(cue, adj.closure / 100.0, T, clip.fps))
        mouth = mouth.astype(np.float32)
    new = MotionClip(rv.reshape(T, -1).astype(poses.dtype), out_exp.astype(exp.dtype),
                     out_trans.astype(trans.dtype), clip.fps, arkit_mouth=mouth)
    if keep is not None and np.any(keep):
        k = np.asarray(keep, bool)[:T]
        new.poses[:len(k)][k] = clip.poses[:len(k)][k]
        new.expressions[:len(k)][k] = clip.expressions[:len(k)][k]
        new.trans[:len(k)][k] = clip.trans[:len(k)][k]
        if mouth is not None:
            new.arkit_mouth[:len(k)][k] = clip.arkit_mouth[:len(k)][k]
    return new
