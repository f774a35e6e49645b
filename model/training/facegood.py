"""FACEGOOD mouth takes: jaw supervision and the ARKit mouth's supervision.

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

ARKit mouth (the network's third modality): upstream's table
``blendshape_to_arkit.tsv`` maps FACEGOOD shapes to ARKit names; its rows
marked ``valid`` (jaw and mouth, 27 shapes = ``motion.ARKIT_MOUTH_NAMES``)
are used, ``max(a,b)`` taking the larger weight per frame as the table says.

Training uses these windows with every column but the jaw's 6D rotation and
the ARKit mouth masked out of the loss (``flow.flow_loss(columns=...)``): body
and FLAME expressions are not known for them.  Never imports bpy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import re

from ..motion import ARKIT_MOUTH_NAMES, MotionClip
from ..representation import ARKIT_COLUMNS, FRAME_DIM, JAW_COLUMNS, Normaliser, rotvec_to_6d

JAW_SHAPE = "mouth_stretch_c"
HELD_OUT = ("1114_3_16",)
TABLE = "blendshape_to_arkit.tsv"


@dataclass
class Take:
    """One FACEGOOD take: name, jaw-open weights (T,) float32 in [0, 1], 16 kHz audio
    path, and the ARKit mouth (T, 27) float32 in [0, 1] (``ARKIT_MOUTH_NAMES`` order)."""

    name: str
    jaw_open: np.ndarray
    wav: Path
    arkit_mouth: np.ndarray


def arkit_table(folder: str | os.PathLike) -> dict[str, list[str]]:
    """ARKit name -> the FACEGOOD shapes whose max it is, for the table's valid rows.

    Raises:
        FileNotFoundError: no ``blendshape_to_arkit.tsv`` in ``folder``.
        ValueError: the valid rows are not exactly ``ARKIT_MOUTH_NAMES``.
    """
    out = {}
    for line in (Path(folder) / TABLE).read_text().splitlines():
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        if len(cells) >= 3 and cells[-1].lower() == "valid":
            out[cells[0]] = re.findall(r"[A-Za-z]+_[A-Za-z0-9_]*[A-Za-z0-9]", cells[1])
    if set(out) != set(ARKIT_MOUTH_NAMES):
        raise ValueError(f"{TABLE}: valid rows {sorted(out)} are not the ARKit mouth shapes")
    return out


def to_arkit_mouth(weights: np.ndarray, names: list[str], table: dict[str, list[str]]) -> np.ndarray:
    """(T, 116) FACEGOOD weights -> (T, 27) float32 ARKit mouth (``ARKIT_MOUTH_NAMES`` order)."""
    w = np.asarray(weights, np.float32)
    return np.stack([w[:, [names.index(n) for n in table[a]]].max(1) for a in ARKIT_MOUTH_NAMES], axis=1)


def load_takes(folder: str | os.PathLike, exclude: tuple[str, ...] = HELD_OUT, only: tuple[str, ...] = ()) -> list[Take]:
    """Takes of ``folder`` (``*.npz`` with a ``.wav`` beside), sorted by name.

    Raises:
        FileNotFoundError: no takes there.
        KeyError: a take has no ``mouth_stretch_c`` column.
    """
    out = []
    table = arkit_table(folder)
    for npz in sorted(Path(folder).glob("*.npz")):
        if npz.stem in exclude or (only and npz.stem not in only) or not npz.with_suffix(".wav").is_file():
            continue
        with np.load(npz) as d:
            names = [str(n) for n in d["names"]]
            out.append(Take(npz.stem, np.asarray(d["weights"][:, names.index(JAW_SHAPE)], np.float32),
                            npz.with_suffix(".wav"), to_arkit_mouth(d["weights"], names, table)))
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

    def frames(self, w: np.ndarray, norm: Normaliser, arkit_mouth: np.ndarray | None = None) -> np.ndarray:
        """(T, FRAME_DIM) float32 normalised frames: the jaw columns from ``w``, the ARKit
        mouth columns from ``arkit_mouth`` (T, 27) when given, all else 0 (the mean)."""
        x = np.zeros((len(w), FRAME_DIM), np.float32)
        sixd = rotvec_to_6d(self.angle(w)[:, None] * self.axis[None])
        x[:, JAW_COLUMNS] = (sixd - norm.mean[JAW_COLUMNS]) / norm.std[JAW_COLUMNS]
        if arkit_mouth is not None:
            x[:, ARKIT_COLUMNS] = (arkit_mouth - norm.mean[ARKIT_COLUMNS]) / norm.std[ARKIT_COLUMNS]
        return x

    def raw_frames(self, w: np.ndarray, arkit_mouth: np.ndarray) -> np.ndarray:
        """(T, FRAME_DIM) un-normalised frames for :meth:`Normaliser.fit`: jaw and ARKit mouth, NaN elsewhere."""
        x = np.full((len(w), FRAME_DIM), np.nan, np.float32)
        x[:, JAW_COLUMNS] = rotvec_to_6d(self.angle(w)[:, None] * self.axis[None])
        x[:, ARKIT_COLUMNS] = arkit_mouth
        return x

    def to_json(self) -> dict:
        return {"offset_rad": self.offset, "scale_rad": self.scale, "axis": self.axis.tolist()}


def jaw_column_weights() -> np.ndarray:
    """(FRAME_DIM,) float32 loss weights of a FACEGOOD window: 1 on the jaw's 6D and the ARKit mouth columns."""
    c = np.zeros(FRAME_DIM, np.float32)
    c[JAW_COLUMNS] = 1.0
    c[ARKIT_COLUMNS] = 1.0
    return c


def capture_jaw(clips: list[MotionClip]) -> np.ndarray:
    """(N, 3) jaw axis-angles of the training clips (SMPL-X ``poses[:, 66:69]``)."""
    return np.concatenate([c.poses[:, 66:69] for c in clips])
