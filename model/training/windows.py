"""Training windows from a BEAT2-layout folder: the (motion, audio) pairs,
the physically valid augmentation (mirror, time stretch with matching
audio), the style labels (terciles of upper-body speed), the in-memory
:class:`Dataset` of windows, and the random conditioning masks and viseme
dropout each training step draws.  Used by :mod:`.train` and by the
streaming :mod:`.dataset`."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..features import FEATURE_DIM, SAMPLE_RATE, FPS, network_features
from ..generate import STYLES
from ..motion import MotionClip
from ..representation import ARKIT_COLUMNS, FRAME_DIM, Normaliser, clip_to_frames, mirror_clip
from ..skeleton import UPPER_BODY, forward_kinematics


STYLE_IDS = [s[0] for s in STYLES]


def find_pairs(data_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(npz, wav) pairs of a BEAT2-layout folder; FileNotFoundError if none."""
    d = Path(data_dir)
    pairs = []
    for npz in sorted((d / "smplxflame_30").glob("*.npz")):
        wav = d / "wave16k" / (npz.stem + ".wav")
        if wav.is_file():
            pairs.append((npz, wav))
    if not pairs:
        raise FileNotFoundError(f"no smplxflame_30/*.npz with matching wave16k/*.wav under {d}")
    return pairs


def upper_body_speed(clip: MotionClip) -> np.ndarray:
    """(T,) mean speed (m/s) of the upper-body joints, central differences at clip.fps."""
    pos = forward_kinematics(clip.poses, clip.trans)[:, list(UPPER_BODY)]
    vel = np.gradient(pos, axis=0) * clip.fps
    return np.linalg.norm(vel, axis=-1).mean(axis=1)


def stretch_clip(clip: MotionClip, wave: np.ndarray, factor: float) -> tuple[MotionClip, np.ndarray]:
    """Slow down (factor > 1) or speed up motion and audio together."""
    if abs(factor - 1.0) < 1e-6:
        return clip, wave
    import librosa
    m = clip.resample(clip.fps * factor)
    m = MotionClip(m.poses, m.expressions, m.trans, clip.fps, clip.betas, clip.gender)
    w = librosa.effects.time_stretch(wave, rate=1.0 / factor).astype(np.float32)
    return m, w


def fit_norm_and_terciles(clips: list[MotionClip], window: int,
                          extra: list[np.ndarray] = ()) -> tuple[Normaliser, np.ndarray]:
    """The data normaliser (fitted on ``clips`` and their mirrors, un-stretched, and the
    ``extra`` un-normalised frames, NaN where a source has no data: FACEGOOD's jaw and
    ARKit mouth) and the energy terciles (m/s) of the style labels: the 1/3 and 2/3
    percentiles of the mean upper-body joint speed over every ``window``-frame window of ``clips``."""
    frames = [clip_to_frames(c) for c in clips] + [clip_to_frames(mirror_clip(c)) for c in clips] + list(extra)
    win_means = []
    for c in clips:
        cs = np.concatenate([[0], np.cumsum(upper_body_speed(c))])
        win_means.append((cs[window:] - cs[:-window]) / window)
    return Normaliser.fit(np.concatenate(frames)), np.percentile(np.concatenate(win_means), [100 / 3, 200 / 3])


class Dataset:
    """All augmented versions of the training clips, as normalised arrays."""

    def __init__(self, data_dir, holdout: float, stretch: list[float], window: int, log=print,
                 visemes: bool = False, viseme_dropout: float = 0.0, facegood: str | None = None,
                 facegood_share: float = 0.0, phones: bool = False):
        import librosa
        self.window = window
        self.visemes, self.viseme_dropout = visemes, viseme_dropout
        self.facegood_share = facegood_share if facegood else 0.0
        base = []
        for npz, wav in find_pairs(data_dir):
            clip = MotionClip.load(npz)
            if abs(clip.fps - FPS) > 1e-6:
                clip = clip.resample(FPS)
            wave, _ = librosa.load(str(wav), sr=SAMPLE_RATE, mono=True)
            n = int(math.floor(clip.num_frames * (1.0 - holdout)))
            if n < window + 2:
                log(f"skip {npz.name}: {n} training frames < window {window}")
                continue
            base.append((npz.stem, clip.slice(0, n), wave[: int(round(n / FPS * SAMPLE_RATE))]))
            log(f"{npz.stem}: {n} of {clip.num_frames} frames for training (holdout {holdout:g})")
        if not base:
            raise ValueError("no clip long enough for training")
        self.sources = [b[0] for b in base]
        takes, self.calibration = [], None
        if facegood:
            from .facegood import JawCalibration, capture_jaw, load_takes
            takes = load_takes(facegood)
            self.calibration = JawCalibration.fit(capture_jaw([c for _, c, _ in base]),
                                                  np.concatenate([t.jaw_open for t in takes]))
        self.norm, self.thresholds = fit_norm_and_terciles(
            [c for _, c, _ in base], window, [self.calibration.raw_frames(t.jaw_open, t.arkit_mouth) for t in takes])
        self.versions = []  # (x (T,F), audio (T,A), speed cumsum, mirrored)
        for name, c, w in base:
            for f in stretch:
                cs_, ws_ = stretch_clip(c, w, f)
                feats = network_features(ws_, SAMPLE_RATE, visemes=visemes, phones=phones)[1]
                T = min(cs_.num_frames, feats.shape[0])
                for mirrored in (False, True):
                    cm = mirror_clip(cs_) if mirrored else cs_
                    x = self.norm.encode(cm)[:T]
                    sp = upper_body_speed(cm)[:T]
                    self.versions.append((x, feats[:T], np.concatenate([[0], np.cumsum(sp)]), mirrored))
        log(f"{len(self.versions)} augmented versions, energy terciles {self.thresholds.round(3).tolist()} m/s")
        self.train_frames = np.concatenate([v[0] for v in self.versions if not v[3]])
        self.facegood: list[tuple[np.ndarray, np.ndarray]] = []   # (jaw + ARKit mouth frames, audio features)
        for t in takes:
            wave, _ = librosa.load(str(t.wav), sr=SAMPLE_RATE, mono=True)
            feats = network_features(wave, SAMPLE_RATE, visemes=visemes, phones=phones)[1]
            T = min(len(t.jaw_open), len(feats))
            self.facegood.append((self.calibration.frames(t.jaw_open[:T], self.norm, t.arkit_mouth[:T]), feats[:T]))
        if takes:
            self.sources += [f"facegood/{t.name}" for t in takes]
            log(f"FACEGOOD: {len(takes)} takes, {sum(len(f[0]) for f in self.facegood) / FPS:.0f} s of jaw and "
                f"ARKit mouth supervision, {facegood_share:.0%} of windows; calibration {self.calibration.to_json()}")

    def style_of(self, vi: int, start: int) -> int:
        x, _, cs, mirrored = self.versions[vi]
        if mirrored:
            return STYLE_IDS.index("left_mirror")
        e = (cs[start + self.window] - cs[start]) / self.window
        return int(np.searchsorted(self.thresholds, e))  # 0 calm, 1 moderate, 2 energetic

    def batch(self, rng: np.random.Generator, B: int):
        """(x (B,W,F), audio (B,W,A), style (B,), mask (B,W), speaker None, columns (B,F) or None)."""
        from .facegood import jaw_column_weights
        W = self.window
        xs, aus, st, ms, cols = [], [], [], [], []
        full, jaw_only = np.ones(FRAME_DIM, np.float32), jaw_column_weights()
        full[ARKIT_COLUMNS] = 0.0             # BEAT2 has no ARKit mouth
        for _ in range(B):
            if self.facegood_share and rng.random() < self.facegood_share:   # jaw + ARKit mouth window, no style
                x, a = self.facegood[int(rng.integers(len(self.facegood)))]
                s = int(rng.integers(0, x.shape[0] - W + 1))
                xs.append(x[s:s + W])
                aus.append(a[s:s + W])
                st.append(len(STYLE_IDS))
                ms.append(np.zeros(W, np.float32))
                cols.append(jaw_only)
                continue
            cols.append(full)
            vi = int(rng.integers(len(self.versions)))
            x, a, _, _ = self.versions[vi]
            s = int(rng.integers(0, x.shape[0] - W + 1))
            xs.append(x[s:s + W])
            aus.append(a[s:s + W])
            st.append(self.style_of(vi, s))
            ms.append(random_mask(rng, W))
        aus = drop_visemes(np.stack(aus), rng, self.viseme_dropout) if self.visemes else np.stack(aus)
        return (torch.from_numpy(np.stack(xs)), torch.from_numpy(aus), torch.tensor(st, dtype=torch.long),
                torch.from_numpy(np.stack(ms)), None,
                torch.from_numpy(np.stack(cols)))


def drop_visemes(audio: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Phone dropout: zero the viseme columns (``FEATURE_DIM:``) of each window of
    ``audio`` (B, W, 63 or 102) with probability ``p`` (visemes and phones), so the network also learns to
    articulate from the acoustic features alone -- the input it gets when
    PocketSphinx cannot decode (``phones.viseme_features`` returns zeros)."""
    audio = audio.copy()
    audio[rng.random(audio.shape[0]) < p, :, FEATURE_DIM:] = 0.0
    return audio


def random_mask(rng: np.random.Generator, W: int) -> np.ndarray:
    """(W,) float32 conditioning mask: none / prefix / both sides / sparse locked frames."""
    m = np.zeros(W, np.float32)
    u = rng.random()
    if u < 0.4:
        return m
    if u < 0.7:
        m[: int(rng.integers(4, W // 3))] = 1
    elif u < 0.9:
        a = int(rng.integers(4, W // 2))
        b = int(rng.integers(a + 8, W - 3))
        m[:a] = 1
        m[b:] = 1
    else:
        m[rng.random(W) < rng.uniform(0.02, 0.1)] = 1
    return m
