"""The mouth rests where the speech is silent.

The network is trained on 51 s of one continuous speech capture, which has
no digital silence; given silence it still moves the face about as much as
during speech (measured: jaw std 0.0056 rad in silence vs 0.0065 rad in
speech).  In the capture the jaw closes in pauses, so generated frames whose
audio is below a silence threshold are blended toward a resting face: the
jaw rotation toward the SMPL-X rest (mouth closed: the identity rotation,
scaling the axis-angle, which is the geodesic slerp to identity) and the
FLAME expression coefficients toward 0 (the neutral face).

Never imports bpy.
"""
from __future__ import annotations

import numpy as np

from .motion import MotionClip

#: SMPL-X joint index of the jaw (``poses[:, 66:69]``).
JAW = 22
#: RMS level (dBFS, ``20 log10 rms`` on a 32 ms frame, see features.py col 41)
#: below which a frame counts as fully silent, and above which as speech.
#: -70 dBFS is below the noise floor of ordinary speech recordings (room
#: tone of the dev clips sits around -60 to -45 dBFS), so only true or
#: near-digital silence rests the mouth and quiet speech is untouched.
SILENT_DB, SPEECH_DB = -70.0, -60.0
#: Frames of the moving average that eases the mouth in and out of rest (≈ 170 ms at 30 fps).
EASE_FRAMES = 5


def silence_weight(rms_db: np.ndarray) -> np.ndarray:
    """Per-frame rest weight in [0, 1] from the RMS level.

    Args:
        rms_db: (T,) RMS level in dBFS at 30 fps (features.py column 41, raw).
    Returns:
        (T,) float32: 1 where silent (< ``SILENT_DB``), 0 where speech
        (> ``SPEECH_DB``), linear between, eased by a ``EASE_FRAMES`` moving average.
    """
    rms_db = np.asarray(rms_db, np.float64).reshape(-1)
    w = np.clip((SPEECH_DB - rms_db) / (SPEECH_DB - SILENT_DB), 0.0, 1.0)
    if w.size >= EASE_FRAMES:
        pad = EASE_FRAMES // 2
        w = np.convolve(np.pad(w, pad, mode="edge"), np.ones(EASE_FRAMES) / EASE_FRAMES, mode="valid")
    return w.astype(np.float32)


def rest_mouth(clip: MotionClip, weight: np.ndarray, keep: np.ndarray | None = None) -> MotionClip:
    """Blend the jaw, expressions and ARKit mouth of ``clip`` toward rest by ``weight`` (in place).

    Args:
        clip: generated motion at the same frame rate as ``weight``.
        weight: (T,) in [0, 1], from :func:`silence_weight`.
        keep: (T,) bool, frames left exactly as they are (the user's known frames).
    Returns:
        ``clip`` (modified in place).
    """
    w = np.asarray(weight, np.float32).reshape(-1)[:clip.num_frames]
    if keep is not None:
        w = np.where(np.asarray(keep, bool)[:len(w)], 0.0, w)
    if not np.any(w > 0):
        return clip
    s = (1.0 - w)[:, None]
    j = slice(3 * JAW, 3 * JAW + 3)
    clip.poses[:len(w), j] = clip.poses[:len(w), j] * s
    clip.expressions[:len(w)] = clip.expressions[:len(w)] * s
    if clip.arkit_mouth is not None:
        clip.arkit_mouth[:len(w)] = clip.arkit_mouth[:len(w)] * s
    return clip
