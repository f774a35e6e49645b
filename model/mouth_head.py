"""The learned ARKit mouth: ``mouth_head.onnx`` in ONNX Runtime.

The head (trained by ``model/training/mouth_head.py``, which says how and why)
maps the network input with phones -- (T, 102) float32 from
``features.network_features(visemes=True, phones=True)``: 48 normalised
acoustic columns, 15 Oculus viseme one-hots, 39 ARPAbet one-hots, 30 fps --
to the 27 ARKit mouth and jaw shapes (``motion.ARKIT_MOUTH_NAMES``).  It is
deterministic: seed, style and guidance do not change it (the hand-animated
FACEGOOD mouth it learned from has one style); ``Generator.generate``
replaces the sampled ARKit columns with it, then applies the phone-timed lip
shapes (``model/mouth.py``) and the mouth dials act on the result as before.

Amplitude: a regressor trained with mean-squared error shrinks toward the
mean (regression dilution): held out, its ``jawOpen`` varied 0.71x as much
as FACEGOOD's animator's and its funnel 0.42x, so open vowels barely
opened on the face.  The file's metadata may carry a per-shape
``amplitude_center`` and ``amplitude_gain`` (27 floats each, JSON),
measured by leaving each FACEGOOD training take out in turn
(``model.training.mouth_head.amplitude_calibration``); :meth:`MouthHead.__call__`
then returns ``center + gain * (raw - center)`` (before smoothing and
clipping), restoring the animation's spread on the shapes the head
predicts.  An affine map per shape leaves Pearson r unchanged (up to the
clipping); it raises the mean-squared error.  A file without them is used
as it is (gain 1).

Never imports bpy or torch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .weights_io import WeightsError

HEAD_FILE = "mouth_head.onnx"
HEAD_INPUT = "feats"
HEAD_OUTPUT = "arkit"
HEAD_DIM = 102          # 48 acoustic + 15 visemes + 39 phones
RIDGE_COLUMNS = 63      # the ridge branch reads the acoustic + viseme columns
RIDGE_CONTEXT = 4       # ±frames
#: :meth:`MouthHead.raw` runs the graph on chunks of this many frames with
#: :data:`CHUNK_MARGIN` frames of context either side (its receptive field is
#: ±6 frames, so the result equals one run on the whole take; bounded memory
#: for long takes: a 30-minute take in one run peaked ~0.4 GiB higher).
CHUNK_FRAMES = 4096
CHUNK_MARGIN = 16


class MouthHead:
    """``mouth_head.onnx`` on the CPU (a ~1 ms-per-second-of-audio graph; no GPU needed).

    Raises:
        FileNotFoundError: ``path`` missing.  RuntimeError: onnxruntime cannot
        load it or its input is not ``feats`` (message says which).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(str(self.path))
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RuntimeError(f"cannot load the ARKit mouth head {self.path}: {exc}") from exc
        if [i.name for i in self.session.get_inputs()] != [HEAD_INPUT]:
            raise RuntimeError(f"{self.path} is not a CoSpeech ARKit mouth head (inputs "
                               f"{[i.name for i in self.session.get_inputs()]})")
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        try:
            self.center = np.asarray(json.loads(self.metadata.get("amplitude_center", "[0]")), np.float32)
            self.gain = np.asarray(json.loads(self.metadata.get("amplitude_gain", "[1]")), np.float32)
        except (ValueError, TypeError) as exc:
            raise RuntimeError(f"{self.path}: unreadable amplitude calibration ({exc})") from exc
        if self.center.shape not in ((1,), (27,)) or self.gain.shape not in ((1,), (27,)):
            raise RuntimeError(f"{self.path}: amplitude calibration has {self.center.shape} / {self.gain.shape} "
                               "values, not 27")

    def raw(self, feats: np.ndarray) -> np.ndarray:
        """(T, 102) float32 features -> (T, 27) float32 unclipped head output."""
        f = np.asarray(feats, np.float32)
        if f.ndim != 2 or f.shape[1] != HEAD_DIM:
            raise ValueError(f"the mouth head reads (T, {HEAD_DIM}) features, got {f.shape}")
        T, out = len(f), []
        for c0 in range(0, max(T, 1), CHUNK_FRAMES):
            a, b = max(0, c0 - CHUNK_MARGIN), min(T, c0 + CHUNK_FRAMES + CHUNK_MARGIN)
            y = self.session.run([HEAD_OUTPUT], {HEAD_INPUT: np.ascontiguousarray(f[None, a:b])})[0][0]
            out.append(y[c0 - a:c0 - a + min(CHUNK_FRAMES, T - c0)])
        return np.concatenate(out).astype(np.float32)

    def __call__(self, feats: np.ndarray, sigma: float = 0.75) -> np.ndarray:
        """(T, 102) float32 features -> (T, 27) float32 ARKit mouth weights in [0, 1]:
        :meth:`raw`, its amplitude restored (module doc), Gaussian low-pass of ``sigma``
        frames (the take's face smoothing), clipped."""
        out = self.center + self.gain * (self.raw(feats) - self.center)
        if sigma > 0 and len(out) > 1:
            out = gaussian_filter1d(out, sigma, axis=0, mode="nearest")
        return np.clip(out, 0.0, 1.0).astype(np.float32)


def load_head(weights_dir: str | os.PathLike) -> "MouthHead | None":
    """The :class:`MouthHead` in ``weights_dir`` (``mouth_head.onnx``), or None when the folder has none.

    Raises:
        WeightsError: the file is there but unreadable or not a mouth head.
    """
    path = Path(weights_dir) / HEAD_FILE
    if not path.is_file():
        return None
    try:
        return MouthHead(path)
    except Exception as exc:
        raise WeightsError(f"CoSpeech ARKit mouth head {path} is corrupt or unreadable: {exc}") from exc
