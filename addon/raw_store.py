"""The model's raw output kept inside the .blend with each generated take: a
custom property ``cospeech_raw`` on the take action holding a compressed
``.npz`` (float32 ``poses`` / ``expressions`` / ``trans`` at 30 fps, float16
ARKit mouth and closure cue, base64 text: ~1 MB per minute), so it survives save and
reopen and edits of keys.  Adjust Take re-bakes from it; Regenerate Range
in-paints from it."""
from __future__ import annotations

import base64
import io

import numpy as np

from ..model.motion import MotionClip

RAW = "cospeech_raw"


def store_raw(action, clip: MotionClip, cue: np.ndarray | None = None) -> None:
    """Keep ``clip`` (the model's 30 fps output) on take ``action``, with the
    audio's closure ``cue`` (30 fps, :func:`model.features.closure_cue`) for
    the *Lip Closure* dial when given."""
    buf = io.BytesIO()
    extra = {} if cue is None else {"closure_cue": np.asarray(cue, np.float16)}
    if clip.arkit_mouth is not None:
        extra["arkit_mouth"] = np.asarray(clip.arkit_mouth, np.float16)
    np.savez_compressed(buf, poses=np.asarray(clip.poses, np.float32),
                        expressions=np.asarray(clip.expressions, np.float32),
                        trans=np.asarray(clip.trans, np.float32), fps=np.float32(clip.fps), **extra)
    action[RAW] = base64.b64encode(buf.getvalue()).decode("ascii")


def _stored(action) -> dict | None:
    """The arrays stored by :func:`store_raw` on ``action``, or None (missing or unreadable)."""
    text = action.get(RAW)
    if not text:
        return None
    try:
        with np.load(io.BytesIO(base64.b64decode(str(text)))) as z:
            return {k: z[k] for k in z.files}
    except Exception:   # noqa: BLE001 - damaged property: the callers fall back
        return None


def load_raw(action) -> MotionClip | None:
    """The raw output stored on ``action``, or None (missing or unreadable: use the keys)."""
    z = _stored(action)
    if z is None:
        return None
    return MotionClip(z["poses"], z["expressions"], z["trans"], float(z["fps"]), arkit_mouth=z.get("arkit_mouth"))


def load_cue(action) -> np.ndarray | None:
    """The closure cue stored with the raw output of ``action``, or None."""
    z = _stored(action)
    return None if z is None or "closure_cue" not in z else np.asarray(z["closure_cue"], np.float32)
