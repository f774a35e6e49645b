"""ARKit 52 blend-shape weights from a generated take, and the Live Link Face CSV.

Never imports bpy.

What drives which shape:

* **The mouth and jaw** (the 27 ``motion.ARKIT_MOUTH_NAMES``: jawOpen,
  jawForward, mouthClose, Funnel, Pucker, Smile, Stretch, Press, Roll,
  Shrug, LowerDown, UpperUp …) come from the network's ARKit mouth output
  (``MotionClip.arkit_mouth``, learned from FACEGOOD's hand-animated mouth,
  with phone-timed closures, ``model/mouth.py``) when the clip has it.  Only
  clips without it (older takes, imported captures) use the fallback of the
  next two items.
* Fallback ``jawOpen`` = jaw opening (|SMPL-X jaw axis-angle|, ``poses[:, 66:69]``)
  / :data:`JAW_OPEN_FULL_RAD`, clipped to [0, 1].  0.1 rad (5.7°) is our
  choice: the BEAT2 capture's 99th-percentile opening during speech is
  0.051 rad, so speech peaks land near jawOpen 0.5, the range iPhone
  captures of speech show.  Not calibrated against FACEGOOD yet.
* ``eyeLook{In,Out,Up,Down}{Left,Right}`` from the generated eye joints
  (SMPL-X ``left_eye_smplhf`` 23, ``right_eye_smplhf`` 24): yaw and pitch of
  each eye's rotation, full weight at :data:`EYE_LOOK_FULL_RAD` (30°).
* ``eyeBlink{Left,Right}``: procedural, seeded blinks (both eyes together):
  inter-blink intervals from a gamma distribution (shape 2) with a mean of
  4 s, i.e. 15 blinks per minute by default (the *Blinks* dial sets the
  rate, 0-40 per minute), at least 0.4 s apart; each blink lasts
  150-300 ms (uniform), closing in the first 40 %.  Sources: spontaneous
  blink rate 17/min at rest and 26/min in conversation, 4.5/min reading
  (Bentivoglio et al., Mov Disord 12(6), 1997); blink duration ~100-400 ms
  (Caffier et al., Eur J Appl Physiol 89, 2003).
* Fallback lip closure ``mouthPressLeft/Right`` (0.5 c), ``mouthRollLower/Upper``
  (0.3 c) and ``mouthClose`` (c · jawOpen, so the lips meet whatever the
  jaw does): c = clip(1 − jaw / :data:`CLOSURE_JAW_RAD`, 0, 1) × speaking,
  where speaking = clip(std of the jaw over ±0.25 s / 0.01 rad, 0, 1) —
  a near-closed jaw amid jaw motion is a closure (P B M …); a still,
  closed mouth in silence stays relaxed.  Our choice of numbers.
* Brows ``browInnerUp``, ``browOuterUpLeft/Right``: raised while the head
  tilts up relative to its 2 s running mean (SMPL-X neck + head pitch),
  full at :data:`BROW_FULL_RAD`; eyebrow raises co-occur with head
  movement and pitch accents in speech (Cavé et al., "About the
  relationship between eyebrow movements and F0 variations", ICSLP 1996;
  Granström & House, "Audiovisual representation of prosody in expressive
  speech communication", Speech Communication 46, 2005).  A heuristic, not
  learned.
* All other shapes are 0 (no FLAME → ARKit mapping yet).

Oculus visemes (:func:`viseme_weights`): each frame's ARKit mouth and jaw
weights are explained as a non-negative mix of the 15 visemes' ARKit mixes
(non-negative least squares, ``scipy.optimize.nnls``) from the table in
``model/assets/oculus_visemes.json`` (TalkingHead, Mika Suominen, MIT;
built from ``../shared/data`` by ``tools/build_face_assets.py``);
``viseme_sil`` takes what the others leave below 1.

Names follow ARKit (``ARFaceAnchor.BlendShapeLocation``, camelCase) in the
order of Live Link Face's CSV columns.  :func:`canonical` matches the name
variants rigs use (``JawOpen``, ``jaw_open``, ``eyeBlink_L``,
``EyeBlinkLeft`` …) case-insensitively through one table.
"""
from __future__ import annotations

import csv
import os
import re

import numpy as np

from .motion import ARKIT_MOUTH_NAMES, MotionClip

#: The 52 ARKit blend shapes in Live Link Face's CSV order.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut")
#: Head and eye rotation columns that follow the 52 shapes in a Live Link Face CSV (radians here).
LIVE_LINK_ROTATIONS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                       "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
JAW_OPEN_FULL_RAD = 0.1
#: Jaw opening (rad) under which a speaking mouth counts as closing (~1.1°).
CLOSURE_JAW_RAD = 0.02
#: Head pitch above its running mean (rad) at which the brows are fully up (~4.6°).
BROW_FULL_RAD = 0.08
VISEME_NAMES: tuple[str, ...] = ("viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk",
                                 "viseme_CH", "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E",
                                 "viseme_I", "viseme_O", "viseme_U")
VISEME_TABLE = os.path.join(os.path.dirname(__file__), "assets", "oculus_visemes.json")
EYE_LOOK_FULL_RAD = np.radians(30.0)
BLINK_MEAN_INTERVAL_S = 4.0
#: Default blinks per minute (the *Blinks* dial's default).
BLINKS_PER_MINUTE = 60.0 / BLINK_MEAN_INTERVAL_S
_INDEX = {n: i for i, n in enumerate(ARKIT_NAMES)}
_CANON = {re.sub(r"[^a-z]", "", n.lower()): n for n in ARKIT_NAMES}


def canonical(name: str) -> str | None:
    """The ARKit name a shape-key name stands for, or None.

    ``jawOpen``, ``JawOpen``, ``jaw_open``, ``eyeBlink_L``, ``EyeBlink_L``,
    ``eyeBlinkLeft`` … (case, ``_ - . space`` and an ``L``/``R`` side
    suffix are normalised)."""
    k = re.sub(r"[^a-z]", "", name.lower())
    if k in _CANON:
        return _CANON[k]
    for short, side in (("l", "left"), ("r", "right")):
        for stem in (k[:-len(side)] if k.endswith(side) else None, k[:-1] if k.endswith(short) else None):
            if stem is None:
                continue
            if stem + side in _CANON:
                return _CANON[stem + side]
            if stem in _CANON:       # one ARKit shape split per side (ICT's browInnerUp_L, cheekPuff_R)
                return _CANON[stem]
    return None


_VCANON = {n[len("viseme_"):].lower(): n for n in VISEME_NAMES}


def canonical_viseme(name: str) -> str | None:
    """The Oculus viseme a shape-key name stands for, or None: ``viseme_aa``
    (Ready Player Me), ``vrc.v_aa`` (VRChat), ``Viseme_PP``, or the bare
    name (``AA``, ``PP``, ``SIL`` of VRoid / Test-Kun style avatars); case-insensitive."""
    k = name.lower()
    for prefix in ("viseme_", "vrc.v_", "v_", ""):
        if k.startswith(prefix) and k[len(prefix):] in _VCANON:
            return _VCANON[k[len(prefix):]]
    return None


#: ARKit shapes that make the mouth (jaw, lips, tongue): a mesh driving these
#: must not also drive its visemes (the mouth would open twice).
MOUTH_NAMES = tuple(n for n in ARKIT_NAMES if n.startswith(("jaw", "mouth", "tongue")))


def _blinks(T: int, fps: float, seed: int, rate: float = BLINKS_PER_MINUTE) -> np.ndarray:
    """(T,) blink weights; ``rate`` blinks per minute on average (0: none)."""
    w = np.zeros(T)
    if rate <= 0:
        return w
    mean = 60.0 / float(rate)
    rng = np.random.default_rng([int(seed), 0xB11E])
    t = rng.uniform(0.5, mean)
    while t * fps < T:
        dur = rng.uniform(0.15, 0.30)
        ts = np.arange(T) / fps - t
        close, open_ = 0.4 * dur, 0.6 * dur
        prof = np.where((ts >= 0) & (ts < close), np.sin(0.5 * np.pi * ts / close) ** 2, 0.0)
        prof = np.where((ts >= close) & (ts < dur), np.cos(0.5 * np.pi * (ts - close) / open_) ** 2, prof)
        w = np.maximum(w, prof)
        # gamma(2) intervals with the mean asked for; at least 0.4 s between blinks
        t += max(0.4, rng.gamma(2.0, max(mean - 0.225, 0.2) / 2.0) + dur)
    return w


def arkit_weights(clip: MotionClip, seed: int = 0, blink_rate: float = BLINKS_PER_MINUTE) -> np.ndarray:
    """(T, 52) float32 ARKit weights in [0, 1] for ``clip`` (see module doc).

    ``seed`` draws the blinks (same seed, same blinks); ``blink_rate`` is
    their mean number per minute (0: no blinks; the *Blinks* dial)."""
    T = clip.num_frames
    out = np.zeros((T, len(ARKIT_NAMES)), np.float32)
    jaw = np.linalg.norm(np.asarray(clip.poses)[:, 66:69], axis=1)
    out[:, _INDEX["jawOpen"]] = np.clip(jaw / JAW_OPEN_FULL_RAD, 0, 1)
    for side, j in (("Left", 23), ("Right", 24)):
        rv = np.asarray(clip.poses)[:, 3 * j:3 * j + 3]
        yaw, pitch = rv[:, 1], rv[:, 0]          # SMPL-X: y up, x to the character's left
        inward = yaw if side == "Right" else -yaw
        out[:, _INDEX[f"eyeLookIn{side}"]] = np.clip(inward / EYE_LOOK_FULL_RAD, 0, 1)
        out[:, _INDEX[f"eyeLookOut{side}"]] = np.clip(-inward / EYE_LOOK_FULL_RAD, 0, 1)
        out[:, _INDEX[f"eyeLookDown{side}"]] = np.clip(pitch / EYE_LOOK_FULL_RAD, 0, 1)
        out[:, _INDEX[f"eyeLookUp{side}"]] = np.clip(-pitch / EYE_LOOK_FULL_RAD, 0, 1)
    blink = _blinks(T, clip.fps, seed, blink_rate)
    out[:, _INDEX["eyeBlinkLeft"]] = blink
    out[:, _INDEX["eyeBlinkRight"]] = blink
    if clip.arkit_mouth is not None:           # the learned mouth
        out[:, [_INDEX[n] for n in ARKIT_MOUTH_NAMES]] = np.clip(clip.arkit_mouth, 0, 1)
    else:                                      # the fallback: closure where the jaw nearly closes
        c = closure(jaw, clip.fps)
        out[:, _INDEX["mouthClose"]] = c * out[:, _INDEX["jawOpen"]]
        for name, gain in (("mouthPressLeft", 0.5), ("mouthPressRight", 0.5),
                           ("mouthRollLower", 0.3), ("mouthRollUpper", 0.3)):
            out[:, _INDEX[name]] = gain * c
    brow = _brows(np.asarray(clip.poses, np.float64), clip.fps)
    for name in ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"):
        out[:, _INDEX[name]] = brow
    return out


def closure(jaw: np.ndarray, fps: float) -> np.ndarray:
    """(T,) lip closure in [0, 1] from the jaw opening ``jaw`` (T,) radians (module doc)."""
    from scipy.ndimage import uniform_filter1d
    win = max(1, int(round(0.5 * fps)))
    mean = uniform_filter1d(jaw, win, mode="nearest")
    std = np.sqrt(np.maximum(uniform_filter1d(jaw ** 2, win, mode="nearest") - mean ** 2, 0.0))
    speaking = np.clip(std / 0.01, 0.0, 1.0)
    return np.clip(1.0 - jaw / CLOSURE_JAW_RAD, 0.0, 1.0) * speaking


def _brows(poses: np.ndarray, fps: float) -> np.ndarray:
    """(T,) brow raise in [0, 1] from the head's pitch above its 2 s running mean."""
    from scipy.ndimage import uniform_filter1d
    pitch = poses[:, 3 * 12] + poses[:, 3 * 15]       # neck + head rotation about x (+: nod down)
    up = uniform_filter1d(pitch, max(1, int(round(2.0 * fps))), mode="nearest") - pitch
    return np.clip(up / BROW_FULL_RAD, 0.0, 1.0)


def load_viseme_table(path: str | os.PathLike = VISEME_TABLE) -> np.ndarray:
    """(15, 52) ARKit mix of each viseme (:data:`VISEME_NAMES` order).

    Raises:
        FileNotFoundError: the table was not built (``tools/build_face_assets.py``).
    """
    import json
    with open(path) as f:
        table = json.load(f)["visemes"]
    A = np.zeros((len(VISEME_NAMES), len(ARKIT_NAMES)))
    for i, v in enumerate(VISEME_NAMES):
        for shape, w in table.get(v, {}).items():
            if shape in _INDEX:
                A[i, _INDEX[shape]] = float(w)
    return A


def viseme_weights(weights: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """(T, 15) float32 viseme weights in [0, 1] from (T, 52) ARKit ``weights`` (module doc).

    Only the jaw and mouth columns are explained; ``table`` defaults to
    :func:`load_viseme_table`."""
    from scipy.optimize import nnls
    A = load_viseme_table() if table is None else np.asarray(table, np.float64)
    cols = [i for i, n in enumerate(ARKIT_NAMES) if n.startswith(("jaw", "mouth")) or n == "tongueOut"]
    M = A[:, cols].T                                           # (mouth shapes, 15)
    out = np.zeros((len(weights), len(VISEME_NAMES)))
    for t, b in enumerate(np.asarray(weights, np.float64)[:, cols]):
        if b.any():
            out[t] = nnls(M, b)[0]
    out = np.clip(out, 0.0, 1.0)
    sil = VISEME_NAMES.index("viseme_sil")
    out[:, sil] = np.clip(1.0 - np.delete(out, sil, axis=1).sum(1), 0.0, 1.0)
    return out.astype(np.float32)


def _timecode(i: int, fps: float) -> str:
    frames_per_s = int(round(fps))
    s, f = divmod(i, frames_per_s)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{f:02d}.000"


def write_live_link_csv(path: str | os.PathLike, clip: MotionClip, fps: float = 60.0, seed: int = 0,
                        blink_rate: float = BLINKS_PER_MINUTE) -> int:
    """Write a Live Link Face CSV: ``Timecode`` (``HH:MM:SS:FF.mmm``),
    ``BlendshapeCount`` (61), the 52 ARKit weights (PascalCase column names)
    and 9 head / eye rotations (radians: head = SMPL-X head joint, eyes =
    eye joints, as yaw/pitch/roll).

    Args:
        clip: the take (any fps; resampled to ``fps``).
        fps: 30 or 60.
    Returns:
        Number of frames written.
    Raises:
        ValueError: ``fps`` not 30 or 60.
    """
    if fps not in (30, 60, 30.0, 60.0):
        raise ValueError(f"Live Link Face CSV runs at 30 or 60 fps, got {fps}")
    from scipy.spatial.transform import Rotation
    c = clip.resample(float(fps))
    w = arkit_weights(c, seed, blink_rate)
    rots = []
    for j in (15, 23, 24):
        ypr = Rotation.from_rotvec(np.asarray(c.poses, np.float64)[:, 3 * j:3 * j + 3]).as_euler("YXZ")
        rots.append(ypr)
    rot = np.concatenate(rots, axis=1)
    header = ["Timecode", "BlendshapeCount"] + [n[0].upper() + n[1:] for n in ARKIT_NAMES] + list(LIVE_LINK_ROTATIONS)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(header)
        for i in range(c.num_frames):
            wr.writerow([_timecode(i, fps), len(ARKIT_NAMES) + len(LIVE_LINK_ROTATIONS)]
                        + [f"{v:.6f}" for v in w[i]] + [f"{v:.6f}" for v in rot[i]])
    os.replace(tmp, path)
    return c.num_frames
