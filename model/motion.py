"""The motion clip: the contract between model/, addon/ and the CLI.

One clip is SMPL-X parameters in exactly the BEAT2 npz layout (Liu et al.,
"EMAGE", CVPR 2024; ``smplxflame_30/*.npz``):

* ``poses``       (T, 165) axis-angle radians, 55 SMPL-X joints x 3, SMPL-X order
* ``expressions`` (T, 100) FLAME 2020 expression coefficients (unitless)
* ``trans``       (T, 3)   root translation, metres, SMPL-X axes (Y up)
* ``mocap_frame_rate`` scalar frames per second (BEAT2: 30)
* optional ``betas`` (300,) or (10,), ``gender``, ``model``
* optional ``arkit_mouth`` (T, 27) ARKit mouth and jaw blend-shape weights in
  [0, 1] (:data:`ARKIT_MOUTH_NAMES`): CoSpeech's learned mouth (not in BEAT2)

Pure numpy + scipy; never imports bpy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from .skeleton import NUM_JOINTS

NUM_EXPRESSIONS = 100
POSE_DIM = NUM_JOINTS * 3
#: The ARKit mouth and jaw shapes the network generates: the rows of FACEGOOD's
#: ARKit table marked valid (``../shared/data/facegood/blendshape_to_arkit.tsv``),
#: in ARKit / Live Link Face order (``model.arkit.ARKIT_NAMES``).
ARKIT_MOUTH_NAMES: tuple[str, ...] = (
    "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight",
    "mouthLeft", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight")
NUM_MOUTH = len(ARKIT_MOUTH_NAMES)


class MotionFormatError(ValueError):
    """A motion file or array does not follow the BEAT2 npz layout."""


@dataclass
class MotionClip:
    """SMPL-X + FLAME motion at a fixed frame rate.

    Attributes:
        poses: (T, 165) float32 axis-angle radians, SMPL-X joint order.
        expressions: (T, 100) float32 FLAME expression coefficients.
        trans: (T, 3) float32 metres, SMPL-X axes (Y up).
        fps: frames per second (float).
        betas: shape coefficients, kept as given (default zeros(300)).
        gender: "neutral" / "male" / "female".
        arkit_mouth: (T, 27) float32 ARKit mouth weights in [0, 1]
            (:data:`ARKIT_MOUTH_NAMES` order), or None (a capture without them).
    """

    poses: np.ndarray
    expressions: np.ndarray
    trans: np.ndarray
    fps: float = 30.0
    betas: np.ndarray = field(default_factory=lambda: np.zeros(300, np.float32))
    gender: str = "neutral"
    arkit_mouth: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.poses = _check("poses", self.poses, (None, POSE_DIM))
        T = self.poses.shape[0]
        self.expressions = _check("expressions", self.expressions, (T, NUM_EXPRESSIONS))
        self.trans = _check("trans", self.trans, (T, 3))
        self.fps = float(self.fps)
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise MotionFormatError(f"fps must be a positive number, got {self.fps!r}")
        self.betas = np.asarray(self.betas, np.float32).reshape(-1)
        if self.arkit_mouth is not None:
            self.arkit_mouth = _check("arkit_mouth", self.arkit_mouth, (T, NUM_MOUTH))

    # ------------------------------------------------------------------ basics
    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered, ``num_frames / fps``."""
        return self.num_frames / self.fps

    def joint_rotvecs(self) -> np.ndarray:
        """(T, 55, 3) axis-angle view of ``poses``."""
        return self.poses.reshape(self.num_frames, NUM_JOINTS, 3)

    def slice(self, start: int, stop: int) -> "MotionClip":
        """Frames ``[start, stop)`` as a new clip (copies)."""
        mouth = None if self.arkit_mouth is None else self.arkit_mouth[start:stop].copy()
        return MotionClip(self.poses[start:stop].copy(), self.expressions[start:stop].copy(),
                          self.trans[start:stop].copy(), self.fps, self.betas.copy(), self.gender, mouth)

    def pick(self, idx) -> "MotionClip":
        """The frames at integer indices ``idx`` (repeats allowed) as a new clip, every channel."""
        idx = np.asarray(idx, np.int64)
        mouth = None if self.arkit_mouth is None else self.arkit_mouth[idx]
        return MotionClip(self.poses[idx], self.expressions[idx], self.trans[idx], self.fps, self.betas.copy(),
                          self.gender, mouth)

    def held(self, num_frames: int) -> "MotionClip":
        """Exactly ``num_frames`` frames: cut, or the last frame held."""
        return self.pick(np.minimum(np.arange(max(1, int(num_frames))), self.num_frames - 1))

    def spliced(self, other: "MotionClip", at: int, where: np.ndarray | None = None) -> "MotionClip":
        """A copy with ``other``'s frames written from frame ``at`` on (only where
        ``where`` (len(other),) is True, if given); ``other`` past the end is dropped.
        A missing ARKit mouth on either side leaves the copy's as it is."""
        out = self.slice(0, self.num_frames)
        n = max(0, min(other.num_frames, self.num_frames - at))
        sel = np.ones(n, bool) if where is None else np.asarray(where, bool)[:n]
        dst = at + np.flatnonzero(sel)
        src = np.flatnonzero(sel)
        out.poses[dst], out.expressions[dst], out.trans[dst] = other.poses[src], other.expressions[src], other.trans[src]
        if out.arkit_mouth is not None and other.arkit_mouth is not None:
            out.arkit_mouth[dst] = other.arkit_mouth[src]
        return out

    @staticmethod
    def zeros(num_frames: int, fps: float = 30.0) -> "MotionClip":
        """A rest-pose clip of ``num_frames`` frames."""
        return MotionClip(np.zeros((num_frames, POSE_DIM), np.float32),
                          np.zeros((num_frames, NUM_EXPRESSIONS), np.float32),
                          np.zeros((num_frames, 3), np.float32), fps)

    # ---------------------------------------------------------------- file i/o
    @staticmethod
    def load(path: str | os.PathLike) -> "MotionClip":
        """Read a BEAT2 / AMASS-style SMPL-X npz.

        ``expressions`` may be missing (AMASS) or have fewer than 100 columns
        (zero-padded); ``trans`` missing means zeros.  The frame rate is read
        from ``mocap_frame_rate`` (BEAT2, AMASS) or ``fps``; 30 if absent.

        Raises:
            FileNotFoundError: no such file.
            MotionFormatError: not an npz, or a key has the wrong shape (the
                message names the key and the expected shape).
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Motion file not found: {path}")
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError ...
            raise MotionFormatError(f"{path}: not a readable .npz file ({exc})") from exc
        with data:
            if "poses" not in data.files:
                raise MotionFormatError(
                    f"{path}: key 'poses' missing; expected (T, {POSE_DIM}) axis-angle "
                    f"(found keys: {', '.join(data.files)})")
            poses = _check("poses", data["poses"], (None, None))
            T = poses.shape[0]
            if poses.shape[1] != POSE_DIM:
                raise MotionFormatError(
                    f"{path}: 'poses' has shape {poses.shape}; expected (T, {POSE_DIM}) "
                    "axis-angle for the 55 SMPL-X joints")
            if "expressions" in data.files:
                exp = _check("expressions", data["expressions"], (T, None))
                if exp.shape[1] > NUM_EXPRESSIONS:
                    raise MotionFormatError(
                        f"{path}: 'expressions' has shape {exp.shape}; expected (T, <= {NUM_EXPRESSIONS})")
                exp = np.pad(exp, ((0, 0), (0, NUM_EXPRESSIONS - exp.shape[1])))
            else:
                exp = np.zeros((T, NUM_EXPRESSIONS), np.float32)
            trans = data["trans"] if "trans" in data.files else np.zeros((T, 3), np.float32)
            trans = _check("trans", trans, (T, 3))
            fps = 30.0
            for key in ("mocap_frame_rate", "fps", "mocap_framerate"):
                if key in data.files:
                    fps = float(np.asarray(data[key]).reshape(-1)[0])
                    break
            betas = np.asarray(data["betas"], np.float32) if "betas" in data.files else np.zeros(300, np.float32)
            gender = str(data["gender"]) if "gender" in data.files else "neutral"
            mouth = _check("arkit_mouth", data["arkit_mouth"], (T, NUM_MOUTH)) if "arkit_mouth" in data.files else None
        return MotionClip(poses, exp, trans, fps, betas, gender, mouth)

    def save(self, path: str | os.PathLike) -> None:
        """Write the clip as a BEAT2-layout npz, readable by ``np.load``.

        Reproducible: the same clip gives the same bytes (``np.savez`` stamps
        each member with the current time; here every member gets the zip
        epoch 1980-01-01, arrays written by ``numpy.lib.format.write_array``)."""
        import zipfile
        arrays = {"poses": self.poses.astype(np.float32), "expressions": self.expressions.astype(np.float32),
                  "trans": self.trans.astype(np.float32), "betas": np.asarray(self.betas),
                  "gender": np.array(self.gender), "model": np.array("smplx2020"),
                  "mocap_frame_rate": np.array(self.fps, np.float32)}
        if self.arkit_mouth is not None:
            arrays["arkit_mouth"] = self.arkit_mouth.astype(np.float32)
        with zipfile.ZipFile(os.fspath(path), "w", zipfile.ZIP_STORED) as zf:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)

    # -------------------------------------------------------------- resampling
    def resample(self, fps: float) -> "MotionClip":
        """The clip at another frame rate, covering the same time span.

        Joint rotations are interpolated with spherical linear interpolation
        (scipy ``Slerp``) per joint, never by blending axis-angle vectors;
        translation and expression coefficients (linear quantities) are
        interpolated linearly (so is ``arkit_mouth``).  Output frame ``k`` is at time ``k / fps``;
        frames past the last input time are held at the last input frame.

        Raises:
            MotionFormatError: ``fps`` not positive.
        """
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise MotionFormatError(f"fps must be a positive number, got {fps!r}")
        if abs(fps - self.fps) < 1e-9:
            return self.slice(0, self.num_frames)
        T = self.num_frames
        t_in = np.arange(T) / self.fps
        n_out = max(1, int(round(T * fps / self.fps)))
        t_out = np.clip(np.arange(n_out) / fps, 0.0, t_in[-1])
        if T == 1:
            idx = np.zeros(n_out, int)
            return MotionClip(self.poses[idx], self.expressions[idx], self.trans[idx], fps,
                              self.betas.copy(), self.gender, None if self.arkit_mouth is None else self.arkit_mouth[idx])
        rv = self.joint_rotvecs().astype(np.float64)
        out = np.empty((n_out, NUM_JOINTS, 3))
        for j in range(NUM_JOINTS):
            out[:, j] = Slerp(t_in, Rotation.from_rotvec(rv[:, j]))(t_out).as_rotvec()
        exp = np.stack([np.interp(t_out, t_in, c) for c in self.expressions.T], axis=1)
        trans = np.stack([np.interp(t_out, t_in, c) for c in self.trans.T], axis=1)
        mouth = (None if self.arkit_mouth is None
                 else np.stack([np.interp(t_out, t_in, c) for c in self.arkit_mouth.T], axis=1))
        return MotionClip(out.reshape(n_out, POSE_DIM), exp, trans, fps, self.betas.copy(), self.gender, mouth)


def _check(name: str, arr, shape: tuple) -> np.ndarray:
    """Float32 2-D array with the given shape (None = any) or MotionFormatError."""
    try:
        a = np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise MotionFormatError(f"'{name}' is not numeric: {exc}") from exc
    want = "(" + ", ".join("T" if s is None and i == 0 else ("N" if s is None else str(s))
                           for i, s in enumerate(shape)) + ")"
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise MotionFormatError(f"'{name}' has shape {a.shape}; expected {want}")
    if not np.all(np.isfinite(a)):
        raise MotionFormatError(f"'{name}' contains NaN or infinite values")
    return a
