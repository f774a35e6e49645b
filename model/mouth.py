"""Phone-timed lip shapes on the ARKit mouth: bilabials close the lips,
labiodentals bring the lower lip up, rounded vowels round them, timed by the
phones the network reads.

Never imports bpy.

FACEGOOD's hand-animated mouth (the ARKit mouth's supervision) never keys
``mouthClose`` and keys ``mouthPress*`` little, so a learned mouth alone
under-closes on P B M.  :func:`phone_closures` finds the frames the decoded
(or aligned) phones call ``PP`` (P B M) and ``FF`` (F V) -- the viseme
one-hot columns of ``features.network_features(visemes=True)`` -- and
:func:`close_lips` moves the ARKit mouth there toward a closed or
labiodental mouth:

* closure ``c`` (PP): lips meet whatever the jaw does (``mouthClose`` =
  ``jawOpen``, the ARKit convention: mouthClose is defined relative to the
  open jaw), the jaw mostly closes (``jawOpen`` x (1 − 0.7 c)), the lips
  press and roll in (``mouthPress*`` ≥ 0.5 c, ``mouthRoll*`` ≥ 0.4 c; the
  TalkingHead ``viseme_PP`` mix rolls both lips at 0.8), and the shapes that
  part the lips (funnel, lower-down, upper-up, stretch) scale by (1 − c);
* labiodental ``f`` (FF): lower lip rolls in under the upper teeth
  (``mouthRollLower`` ≥ 0.6 f, ``mouthShrugLower`` ≥ 0.3 f, after the
  ``viseme_FF`` mix's roll-lower 1.0), the jaw half closes
  (x (1 − 0.5 f)), ``mouthLowerDown*`` scales by (1 − f).

* rounding ``r`` (viseme ``oh``: AO OW OY, ``ou``: UW UH W): the lips
  round — ``oh`` funnel ≥ 0.45 r and pucker ≥ 0.25 r, ``ou`` pucker ≥ 0.5 r
  and funnel ≥ 0.25 r (after the TalkingHead mixes: ``viseme_O`` pucker 1.0,
  ``viseme_U`` funnel 1.0, at about half strength: speech rounds less than a
  held viseme); spread vowels (``ih``, ``E``: IY IH Y EH EY ER) scale
  funnel and pucker by (1 − 0.5 s).  FACEGOOD's Mandarin speaker rounds too
  little for the learned mouth to round English on its own (rounding
  contrast ~0.0 on the English dev clips without this step, ``model.training.mouth_eval``).

The SMPL-X jaw (FLAME jaw) closes by the same factor as ``jawOpen``
(:func:`close_jaw`: its rotation angle x (1 − 0.7 c)(1 − 0.5 f)), so a
character driven by a jaw bone closes on P B M and F V too.

Each phone's indicator is eased by a Gaussian of :data:`EASE_SIGMA` frames
and renormalised to peak 1 on a one-frame phone, so a 2-frame /b/ still
closes fully.  The numbers are our choice (looked at on the ICT head).
"""
from __future__ import annotations

import numpy as np

from .motion import ARKIT_MOUTH_NAMES

EASE_SIGMA = 1.0  # frames at 30 fps
_I = {n: i for i, n in enumerate(ARKIT_MOUTH_NAMES)}
_PARTING = ("mouthFunnel", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
            "mouthStretchLeft", "mouthStretchRight")


def _ease(ind: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d
    if sigma <= 0:
        return ind
    peak = gaussian_filter1d(np.eye(1, 9, 4)[0], sigma).max()      # a one-frame phone's peak
    return np.clip(gaussian_filter1d(ind, sigma, mode="nearest") / peak, 0.0, 1.0)


def phone_rounding(visemes: np.ndarray, sigma: float = EASE_SIGMA) -> dict[str, np.ndarray]:
    """``{"oh": (T,), "ou": (T,), "spread": (T,)}`` float32 in [0, 1] from the 15
    viseme one-hots (``phones.VISEMES`` order), eased like :func:`phone_closures`."""
    from .phones import VISEMES
    v = np.asarray(visemes, np.float64)
    return {"oh": _ease(v[:, VISEMES.index("oh")], sigma).astype(np.float32),
            "ou": _ease(v[:, VISEMES.index("ou")], sigma).astype(np.float32),
            "spread": _ease(v[:, VISEMES.index("ih")] + v[:, VISEMES.index("E")], sigma).astype(np.float32)}


def round_lips(mouth: np.ndarray, oh: np.ndarray, ou: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """The ARKit mouth with rounding applied (module doc); (T, 27) float32 in [0, 1], a new array."""
    m = np.array(mouth, np.float64)
    n = len(m)
    oh, ou, spread = (np.clip(np.asarray(a, np.float64).reshape(-1)[:n], 0, 1) for a in (oh, ou, spread))
    for name in ("mouthFunnel", "mouthPucker"):
        m[:, _I[name]] *= 1 - 0.5 * spread
    m[:, _I["mouthFunnel"]] = np.maximum(m[:, _I["mouthFunnel"]], np.maximum(0.45 * oh, 0.25 * ou))
    m[:, _I["mouthPucker"]] = np.maximum(m[:, _I["mouthPucker"]], np.maximum(0.25 * oh, 0.5 * ou))
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def phone_shapes(mouth: np.ndarray, visemes: np.ndarray) -> np.ndarray:
    """The ARKit mouth with every phone-timed shape of the module doc: rounding, then closures."""
    return close_lips(round_lips(mouth, **phone_rounding(visemes)), *phone_closures(visemes))


def phone_closures(visemes: np.ndarray, sigma: float = EASE_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Closure and labiodental weights from the 15 viseme one-hots.

    Args:
        visemes: (T, 15) viseme one-hots at 30 fps (``phones.VISEMES`` order:
            sil, PP, FF, …); all zero where the decoder gave nothing.
        sigma: Gaussian ease in frames.
    Returns:
        ``(c, f)``: (T,) float32 in [0, 1], P B M closure and F V labiodental.
    """
    from .phones import VISEMES
    v = np.asarray(visemes, np.float64)
    return (_ease(v[:, VISEMES.index("PP")], sigma).astype(np.float32),
            _ease(v[:, VISEMES.index("FF")], sigma).astype(np.float32))


def jaw_factor(c: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(T,) factor of the jaw opening for closures ``c`` and labiodentals ``f`` (module doc)."""
    return (1 - 0.7 * np.asarray(c, np.float64)) * (1 - 0.5 * np.asarray(f, np.float64))


def close_jaw(poses: np.ndarray, c: np.ndarray, f: np.ndarray) -> np.ndarray:
    """SMPL-X poses with the jaw's rotation angle scaled by :func:`jaw_factor` (axis kept).

    Args:
        poses: (T, 165) SMPL-X axis-angle poses, radians (``motion.MotionClip.poses``).
        c, f: (T,) closure and labiodental weights in [0, 1] (:func:`phone_closures`).
    Returns:
        (T, 165) array of ``poses``' dtype, a new array.
    """
    from .skeleton import JAW
    out = np.array(poses, copy=True)
    k = jaw_factor(np.clip(c, 0, 1), np.clip(f, 0, 1))[:len(out), None]
    out[:, 3 * JAW:3 * JAW + 3] = (out[:, 3 * JAW:3 * JAW + 3] * k).astype(out.dtype)
    return out


def close_lips(mouth: np.ndarray, c: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
    """The ARKit mouth with closures ``c`` and labiodentals ``f`` applied (module doc).

    Args:
        mouth: (T, 27) ARKit mouth weights in [0, 1] (``ARKIT_MOUTH_NAMES`` order).
        c: (T,) closure in [0, 1]; f: (T,) labiodental in [0, 1] or None.
    Returns:
        (T, 27) float32 in [0, 1], a new array.
    """
    m = np.array(mouth, np.float64)
    c = np.clip(np.asarray(c, np.float64).reshape(-1)[:len(m)], 0, 1)
    f = np.zeros_like(c) if f is None else np.clip(np.asarray(f, np.float64).reshape(-1)[:len(m)], 0, 1)
    jaw = m[:, _I["jawOpen"]] * jaw_factor(c, f)
    m[:, _I["jawOpen"]] = jaw
    m[:, _I["mouthClose"]] = np.maximum(m[:, _I["mouthClose"]] * (1 - c), c * jaw)
    for n in _PARTING:
        m[:, _I[n]] *= 1 - c
    for n in ("mouthPressLeft", "mouthPressRight"):
        m[:, _I[n]] = np.maximum(m[:, _I[n]], 0.5 * c)
    for n in ("mouthRollLower", "mouthRollUpper"):
        m[:, _I[n]] = np.maximum(m[:, _I[n]], 0.4 * c)
    m[:, _I["mouthRollLower"]] = np.maximum(m[:, _I["mouthRollLower"]], 0.6 * f)
    m[:, _I["mouthShrugLower"]] = np.maximum(m[:, _I["mouthShrugLower"]], 0.3 * f)
    for n in ("mouthLowerDownLeft", "mouthLowerDownRight"):
        m[:, _I[n]] *= 1 - f
    return np.clip(m, 0.0, 1.0).astype(np.float32)
