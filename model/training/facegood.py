"""FACEGOOD mouth takes as extra jaw supervision.

``../shared/data/facegood/`` (FACEGOOD-Audio2Face, **MIT**): 7 takes, 10.9
min of one Mandarin speaker, hand-animated FACEGOOD rig weights in [0, 1] at
30 fps with 16 kHz audio (frame k = audio time k / 30 s).  Its jaw-open
shape is ``mouth_stretch_c`` (upstream's ARKit table maps it to
``jawOpen``).  Take ``1114_3_16`` is held out for evaluation (lip-sync issue).

Calibration to SMPL-X: a FACEGOOD weight ``w`` becomes a jaw rotation of
angle ``a + b * w`` radians about the capture's mean jaw axis, where ``a``,
``b`` map the 5th/95th percentiles of ``w`` over the training takes onto the
5th/95th percentiles of the capture's jaw opening ``|poses[:, 66:69]|``
(training frames only).  A linear map keeps the Pearson r of the track.

Training uses these windows with every column but the jaw's 6D rotation
masked out of the loss (``flow.flow_loss(columns=...)``): body and FLAME
expressions are not known for them.  Never imports bpy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..motion import MotionClip
from ..representation import FRAME_DIM, JAW_COLUMNS, Normaliser, rotvec_to_6d

JAW_SHAPE = "mouth_stretch_c"
HELD_OUT = ("1114_3_16",)


@dataclass
class Take:
    """One FACEGOOD take: name, jaw-open weights (T,) float32 in [0, 1], 16 kHz audio path."""

    name: str
    jaw_open: np.ndarray
    wav: Path


def load_takes(folder: str | os.PathLike, exclude: tuple[str, ...] = HELD_OUT, only: tuple[str, ...] = ()) -> list[Take]:
    """Takes of ``folder`` (``*.npz`` with a ``.wav`` beside), sorted by name.

    Raises:
        FileNotFoundError: no takes there.
        KeyError: a take has no ``mouth_stretch_c`` column.
    """
    out = []
    for npz in sorted(Path(folder).glob("*.npz")):
        if npz.stem in exclude or (only and npz.stem not in only) or not npz.with_suffix(".wav").is_file():
            continue
        with np.load(npz) as d:
            names = [str(n) for n in d["names"]]
            out.append(Take(npz.stem, np.asarray(d["weights"][:, names.index(JAW_SHAPE)], np.float32),
                            npz.with_suffix(".wav")))
    if not out:
        raise FileNotFoundError(f"no FACEGOOD takes (*.npz + *.wav) in {folder}")
    return out


@dataclass
class JawCalibration:
    """FACEGOOD jaw-open weight -> SMPL-X jaw rotation (module doc)."""

    offset: float        # radians at weight 0
    scale: float         # radians per unit weight
    axis: np.ndarray     # (3,) unit jaw axis in the SMPL-X jaw joint's parent frame

    @staticmethod
    def fit(capture_jaw_rotvec: np.ndarray, facegood_weights: np.ndarray) -> "JawCalibration":
        """From the capture's (T, 3) jaw axis-angles and FACEGOOD jaw-open weights (N,)."""
        rv = np.asarray(capture_jaw_rotvec, np.float64)
        ang = np.linalg.norm(rv, axis=1)
        axis = (rv / np.maximum(ang, 1e-9)[:, None] * ang[:, None]).sum(0)
        axis /= max(np.linalg.norm(axis), 1e-9)
        c5, c95 = np.percentile(ang, [5, 95])
        f5, f95 = np.percentile(np.asarray(facegood_weights, np.float64), [5, 95])
        scale = (c95 - c5) / max(f95 - f5, 1e-6)
        return JawCalibration(float(c5 - scale * f5), float(scale), axis)

    def angle(self, w: np.ndarray) -> np.ndarray:
        """(T,) radians for weights (T,)."""
        return self.offset + self.scale * np.asarray(w, np.float64)

    def frames(self, w: np.ndarray, norm: Normaliser) -> np.ndarray:
        """(T, FRAME_DIM) float32 normalised frames: the jaw columns from ``w``, all else 0 (the mean)."""
        x = np.zeros((len(w), FRAME_DIM), np.float32)
        sixd = rotvec_to_6d(self.angle(w)[:, None] * self.axis[None])
        x[:, JAW_COLUMNS] = (sixd - norm.mean[JAW_COLUMNS]) / norm.std[JAW_COLUMNS]
        return x

    def to_json(self) -> dict:
        return {"offset_rad": self.offset, "scale_rad": self.scale, "axis": self.axis.tolist()}


def jaw_column_weights() -> np.ndarray:
    """(FRAME_DIM,) float32 loss weights of a FACEGOOD window: 1 on the jaw's 6D columns."""
    c = np.zeros(FRAME_DIM, np.float32)
    c[JAW_COLUMNS] = 1.0
    return c


def capture_jaw(clips: list[MotionClip]) -> np.ndarray:
    """(N, 3) jaw axis-angles of the training clips (SMPL-X ``poses[:, 66:69]``)."""
    return np.concatenate([c.poses[:, 66:69] for c in clips])
