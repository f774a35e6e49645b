"""ARKit weights and the Live Link Face CSV (model/arkit.py)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import BEAT2_NPZ
from model.arkit import ARKIT_NAMES, JAW_OPEN_FULL_RAD, arkit_weights, canonical, write_live_link_csv
from model.motion import MotionClip


@pytest.fixture(scope="module")
def clip():
    if BEAT2_NPZ.exists():
        return MotionClip.load(BEAT2_NPZ)
    rng = np.random.default_rng(0)
    return MotionClip(rng.normal(0, .03, (1905, 165)).astype(np.float32), np.zeros((1905, 100), np.float32),
                      np.zeros((1905, 3), np.float32), 30.0)


def test_names_and_matching():
    assert len(ARKIT_NAMES) == 52 == len(set(ARKIT_NAMES))
    for variant in ("jawOpen", "JawOpen", "jaw_open", "JAW-OPEN"):
        assert canonical(variant) == "jawOpen"
    for variant in ("eyeBlinkLeft", "eyeBlink_L", "EyeBlink_L", "eye_blink_left", "EyeBlinkLeft"):
        assert canonical(variant) == "eyeBlinkLeft"
    assert canonical("mouthSmile_R") == "mouthSmileRight"
    assert canonical("viseme_aa") is None and canonical("Exp003") is None and canonical("Basis") is None


def test_weights_jaw_and_blinks(clip):
    w = arkit_weights(clip, seed=3)
    assert w.shape == (clip.num_frames, 52) and w.dtype == np.float32 and w.min() >= 0 and w.max() <= 1
    jaw = np.linalg.norm(clip.poses[:, 66:69], axis=1)
    assert np.allclose(w[:, ARKIT_NAMES.index("jawOpen")], np.clip(jaw / JAW_OPEN_FULL_RAD, 0, 1), atol=1e-6)
    # blinks over 10 minutes: rate 10-20 per minute, each 100-400 ms (module doc gives the sources)
    long = MotionClip(np.zeros((18000, 165), np.float32), np.zeros((18000, 100), np.float32),
                      np.zeros((18000, 3), np.float32), 30.0)
    b = arkit_weights(long, seed=1)[:, ARKIT_NAMES.index("eyeBlinkLeft")]
    closed = b > 0.05
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    ends = np.flatnonzero(~closed[1:] & closed[:-1]) + 1
    rate = len(starts) / 10.0
    dur = (ends[:len(starts)] - starts[:len(ends)]) / 30.0
    assert 10 <= rate <= 20, rate
    assert 0.1 <= np.median(dur) <= 0.4 and dur.max() <= 0.4
    assert np.array_equal(b, arkit_weights(long, seed=1)[:, 0]) and not np.array_equal(b, arkit_weights(long, seed=2)[:, 0])


def _blink_starts(b: np.ndarray) -> np.ndarray:
    closed = b > 0.05
    return np.flatnonzero(closed[1:] & ~closed[:-1]) + 1


@pytest.mark.parametrize("rate", [0.0, 6.0, 15.0, 30.0, 40.0])
def test_blink_rate_dial(rate):
    """The Blinks dial: over 60 minutes the count per minute is within 12 % of
    the dial (0: none).  (Intervals are gamma(2)-distributed, so 10 minutes
    at 6/min vary by ~±10 % from seed to seed.)"""
    T = 108000
    long = MotionClip(np.zeros((T, 165), np.float32), np.zeros((T, 100), np.float32),
                      np.zeros((T, 3), np.float32), 30.0)
    b = arkit_weights(long, seed=4, blink_rate=rate)[:, ARKIT_NAMES.index("eyeBlinkRight")]
    n = len(_blink_starts(b)) / 60.0
    assert abs(n - rate) <= 0.12 * rate + 1e-9, (rate, n)


@pytest.mark.parametrize("fps", [30, 60])
def test_live_link_csv_reads_back(tmp_path, clip, fps):
    path = tmp_path / "take.csv"
    n = write_live_link_csv(path, clip.slice(0, 300), fps=fps, seed=0)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header[:3] == ["Timecode", "BlendshapeCount", "EyeBlinkLeft"] and header[2 + 17] == "JawOpen"
    assert len(header) == 2 + 52 + 9 and header[-1] == "RightEyeRoll"
    assert len(rows) - 1 == n == 10 * fps
    assert rows[1][0] == "00:00:00:00.000" and rows[fps + 1][0] == "00:00:01:00.000" and rows[1][1] == "61"
    vals = np.array([[float(v) for v in r[2:54]] for r in rows[1:]])
    assert vals.min() >= 0 and vals.max() <= 1 and vals[:, 17].std() > 0
    with pytest.raises(ValueError):
        write_live_link_csv(path, clip, fps=25)
