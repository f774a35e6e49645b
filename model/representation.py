"""MotionClip <-> the network's per-frame feature vectors, plus mirroring.

Pure numpy + scipy; never imports bpy.

Per-frame layout (``FRAME_DIM`` = 460 columns, three modalities):

* **body** (``BODY_DIM`` = 315): 6D rotations (Zhou et al., "On the
  Continuity of Rotation Representations in Neural Networks", CVPR 2019:
  the first two columns of the rotation matrix, column-major
  ``[R00, R10, R20, R01, R11, R21]``) of the 52 body + hand joints
  (all SMPL-X joints except jaw and eyes, ``BODY_JOINTS``), then the absolute
  root translation ``trans`` (metres, 3).
* **face** (``FACE_DIM`` = 118): 6D rotations of the jaw and the two eyes
  (joints 22, 23, 24), then the 100 FLAME expression coefficients.
* **ARKit mouth** (``MOUTH_DIM`` = 27): the ARKit mouth and jaw blend-shape
  weights of ``MotionClip.arkit_mouth`` (``motion.ARKIT_MOUTH_NAMES``).  A clip
  without them (every BEAT2 capture) gives NaN there: :meth:`Normaliser.fit`
  ignores NaN, :meth:`Normaliser.encode` writes 0 (the mean) and training masks
  those columns out of the loss (:func:`known_columns`).

All 55 joints, ``trans`` and ``expressions`` are represented, so
encode -> decode reproduces a BEAT2 clip to float32 precision (~1e-6).
Translation is absolute (not velocity) so that in-painting and window
continuation reproduce known frames exactly without integration drift.

Normalisation: ``(x - mean) / std`` per column with statistics of the
training set (``std`` floored at ``STD_FLOOR``), saved with the weights.
Decoding maps 6D back to rotations by Gram-Schmidt (Zhou et al., Sec. 4)
and then to axis-angle with ``scipy.spatial.transform.Rotation``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .motion import ARKIT_MOUTH_NAMES, MotionClip, NUM_EXPRESSIONS, NUM_MOUTH, POSE_DIM
from .skeleton import JAW, JOINT_NAMES, NUM_JOINTS

FACE_JOINTS: tuple[int, ...] = (JAW, 23, 24)
BODY_JOINTS: tuple[int, ...] = tuple(j for j in range(NUM_JOINTS) if j not in FACE_JOINTS)
BODY_DIM = len(BODY_JOINTS) * 6 + 3
FACE_DIM = len(FACE_JOINTS) * 6 + NUM_EXPRESSIONS
MOUTH_DIM = NUM_MOUTH
FRAME_DIM = BODY_DIM + FACE_DIM + MOUTH_DIM
#: frame-vector columns of the face block and of the ARKit mouth block
FACE_COLUMNS = slice(BODY_DIM, BODY_DIM + FACE_DIM)
ARKIT_COLUMNS = slice(BODY_DIM + FACE_DIM, FRAME_DIM)
#: frame-vector columns of the jaw's 6D rotation (the first face joint)
JAW_COLUMNS = slice(BODY_DIM, BODY_DIM + 6)
STD_FLOOR = 1e-2

#: SMPL-X joint index of each joint's mirror image (left_* <-> right_*).
MIRROR_PERM: tuple[int, ...] = tuple(
    JOINT_NAMES.index(n.replace("left_", "§").replace("right_", "left_").replace("§", "right_"))
    for n in JOINT_NAMES)
#: index in ``ARKIT_MOUTH_NAMES`` of each shape's mirror image (…Left <-> …Right).
MOUTH_MIRROR_PERM: tuple[int, ...] = tuple(
    ARKIT_MOUTH_NAMES.index(n.replace("Left", "§").replace("Right", "Left").replace("§", "Right"))
    for n in ARKIT_MOUTH_NAMES)


def rotvec_to_6d(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle radians -> (..., 6) first two rotation-matrix columns."""
    shp = rotvec.shape[:-1]
    m = Rotation.from_rotvec(np.asarray(rotvec, np.float64).reshape(-1, 3)).as_matrix()
    return np.concatenate([m[:, :, 0], m[:, :, 1]], axis=-1).reshape(*shp, 6)


def sixd_to_matrix(d6: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) rotation matrices by Gram-Schmidt (Zhou et al. 2019)."""
    d6 = np.asarray(d6, np.float64)
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-8)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-8)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def sixd_to_rotvec(d6: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3) axis-angle radians (angle in [0, pi])."""
    shp = d6.shape[:-1]
    m = sixd_to_matrix(d6).reshape(-1, 3, 3)
    return Rotation.from_matrix(m).as_rotvec().reshape(*shp, 3)


def clip_to_frames(clip: MotionClip) -> np.ndarray:
    """Un-normalised per-frame vectors.

    Returns:
        (T, FRAME_DIM) float32: body, face and ARKit mouth blocks (module
        docstring); the mouth block is NaN when ``clip.arkit_mouth`` is None.
    """
    rv = clip.joint_rotvecs()
    body6 = rotvec_to_6d(rv[:, list(BODY_JOINTS)]).reshape(clip.num_frames, -1)
    face6 = rotvec_to_6d(rv[:, list(FACE_JOINTS)]).reshape(clip.num_frames, -1)
    mouth = (np.full((clip.num_frames, MOUTH_DIM), np.nan, np.float32) if clip.arkit_mouth is None
             else clip.arkit_mouth)
    return np.concatenate([body6, clip.trans, face6, clip.expressions, mouth], axis=1).astype(np.float32)


def known_columns(frames: np.ndarray) -> np.ndarray:
    """(FRAME_DIM,) float32 loss weights of (T, FRAME_DIM) un-normalised frames: 1 where a column has data."""
    return (~np.isnan(np.asarray(frames)).any(0)).astype(np.float32)


def frames_to_clip(frames: np.ndarray, fps: float = 30.0) -> MotionClip:
    """Inverse of :func:`clip_to_frames`.

    Args:
        frames: (T, FRAME_DIM) un-normalised vectors (6D blocks need not be orthonormal).
        fps: frame rate of the returned clip.
    Returns:
        MotionClip in the BEAT2 layout, ``arkit_mouth`` clipped to [0, 1] (None where the block is NaN).
    """
    frames = np.asarray(frames, np.float64)
    T = frames.shape[0]
    nb = len(BODY_JOINTS)
    poses = np.zeros((T, NUM_JOINTS, 3))
    poses[:, list(BODY_JOINTS)] = sixd_to_rotvec(frames[:, :nb * 6].reshape(T, nb, 6))
    trans = frames[:, nb * 6:BODY_DIM]
    nf = len(FACE_JOINTS)
    poses[:, list(FACE_JOINTS)] = sixd_to_rotvec(frames[:, BODY_DIM:BODY_DIM + nf * 6].reshape(T, nf, 6))
    exp = frames[:, BODY_DIM + nf * 6:BODY_DIM + FACE_DIM]
    mouth = frames[:, ARKIT_COLUMNS]
    mouth = None if np.isnan(mouth).any() else np.clip(mouth, 0, 1)
    return MotionClip(poses.reshape(T, POSE_DIM), exp, trans, fps, arkit_mouth=mouth)


@dataclass
class Normaliser:
    """Per-column mean/std of the frame vectors (saved in ``cospeech.json``)."""

    mean: np.ndarray  # (FRAME_DIM,) float32
    std: np.ndarray   # (FRAME_DIM,) float32, >= STD_FLOOR

    @staticmethod
    def fit(frames: np.ndarray) -> "Normaliser":
        """Statistics of (N, FRAME_DIM) training frames; NaN entries (columns a source
        does not have) are left out of each column's statistics."""
        frames = np.asarray(frames, np.float64)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)         # all-NaN columns: mean 0, std floor
            mean, std = np.nanmean(frames, 0), np.nanstd(frames, 0)
        return Normaliser(np.nan_to_num(mean).astype(np.float32),
                          np.maximum(np.nan_to_num(std), STD_FLOOR).astype(np.float32))

    def encode(self, clip: MotionClip) -> np.ndarray:
        """MotionClip -> (T, FRAME_DIM) float32 normalised (0 = the mean where the clip has no data)."""
        return np.nan_to_num((clip_to_frames(clip) - self.mean) / self.std).astype(np.float32)

    def decode(self, x: np.ndarray, fps: float = 30.0, chunk: int = 4096) -> MotionClip:
        """(T, FRAME_DIM) normalised -> MotionClip (Gram-Schmidt, axis-angle).

        Frames are independent, so they are decoded ``chunk`` at a time: the
        float64 rotation temporaries of a 30-minute take (54,000 frames x 55
        joints) would otherwise peak near 1 GB.
        """
        x = np.asarray(x)
        if len(x) <= chunk:
            return frames_to_clip(np.asarray(x, np.float64) * self.std + self.mean, fps)
        parts = [frames_to_clip(np.asarray(x[i:i + chunk], np.float64) * self.std + self.mean, fps)
                 for i in range(0, len(x), chunk)]
        return MotionClip(np.concatenate([c.poses for c in parts]), np.concatenate([c.expressions for c in parts]),
                          np.concatenate([c.trans for c in parts]), fps,
                          arkit_mouth=np.concatenate([c.arkit_mouth for c in parts]))

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @staticmethod
    def from_json(d: dict) -> "Normaliser":
        mean = np.asarray(d["mean"], np.float32)
        std = np.asarray(d["std"], np.float32)
        if mean.shape != (FRAME_DIM,) or std.shape != (FRAME_DIM,) or np.any(~np.isfinite(std)) or np.any(std <= 0):
            raise ValueError(f"normalisation stats must be ({FRAME_DIM},) finite with std > 0")
        return Normaliser(mean, std)


def mirror_clip(clip: MotionClip) -> MotionClip:
    """Left-right mirror across the SMPL-X YZ plane (x -> -x).

    Joint rotations swap left_* <-> right_* (:data:`MIRROR_PERM`) and each
    axis-angle (x, y, z) becomes (x, -y, -z) (a reflection M = diag(-1,1,1)
    maps R to M R M, whose rotation vector is M r * det(M)); ``trans`` x is
    negated; ARKit mouth shapes swap …Left <-> …Right (:data:`MOUTH_MIRROR_PERM`).
    FLAME expression coefficients are kept unchanged: the
    expression basis has no published left-right mapping, so facial
    asymmetries are not mirrored (a known approximation).
    """
    rv = clip.joint_rotvecs()[:, list(MIRROR_PERM)].copy()
    rv[..., 1:] *= -1.0
    trans = clip.trans.copy()
    trans[:, 0] *= -1.0
    mouth = None if clip.arkit_mouth is None else clip.arkit_mouth[:, list(MOUTH_MIRROR_PERM)].copy()
    return MotionClip(rv.reshape(clip.num_frames, POSE_DIM), clip.expressions.copy(), trans,
                      clip.fps, clip.betas.copy(), clip.gender, mouth)
