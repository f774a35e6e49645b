"""Artist dials (model/adjust.py) on a real capture (or a synthetic clip
when ../shared is absent): manifold-correct intensity, smoothing, locks."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import BEAT2_NPZ
from model.adjust import GESTURE, HEAD, MOUTH, PRESETS, Adjustments, adjust
from model.motion import MotionClip


@pytest.fixture(scope="module")
def clip():
    if BEAT2_NPZ.exists():
        return MotionClip.load(BEAT2_NPZ).slice(0, 600)
    rng = np.random.default_rng(0)
    return MotionClip(np.cumsum(rng.normal(0, .01, (600, 165)), 0).astype(np.float32),
                      rng.normal(0, 1, (600, 100)).astype(np.float32), np.zeros((600, 3), np.float32), 30.0)


def _rel_angles(rv):
    rot = Rotation.from_rotvec(rv.astype(np.float64))
    return np.linalg.norm((rot.mean().inv() * rot).as_rotvec(), axis=1), rot.mean()


def test_identity_is_bit_identical(clip):
    out = adjust(clip, Adjustments())
    assert np.array_equal(out.poses, clip.poses) and np.array_equal(out.expressions, clip.expressions)
    assert np.array_equal(out.trans, clip.trans)


def test_zero_holds_the_mean_and_200_doubles_the_angle(clip):
    j = HEAD[1]
    rv = clip.poses[:, 3 * j:3 * j + 3]
    ang, mean = _rel_angles(rv)
    zero = adjust(clip, Adjustments(head=0)).poses[:, 3 * j:3 * j + 3]
    assert np.allclose(Rotation.from_rotvec(zero.astype(np.float64)).as_matrix(), mean.as_matrix()[None], atol=1e-5)
    double = adjust(clip, Adjustments(head=200)).poses[:, 3 * j:3 * j + 3]
    rel2 = (mean.inv() * Rotation.from_rotvec(double.astype(np.float64))).as_rotvec()
    assert np.abs(np.linalg.norm(rel2, axis=1) - 2 * ang).max() < 1e-4
    # other parts untouched
    other = adjust(clip, Adjustments(head=200))
    g = GESTURE[5]
    assert np.array_equal(other.poses[:, 3 * g:3 * g + 3], clip.poses[:, 3 * g:3 * g + 3])


def _jerk(x):
    return float(np.abs(np.diff(x, n=3, axis=0)).mean())


def test_smoothing_lowers_jerk_monotonically(clip):
    j = MOUTH[0]
    jerks = [_jerk(adjust(clip, Adjustments(smooth_face=s)).poses[:, 3 * j:3 * j + 3]) for s in (0, 0.5, 1, 2, 4)]
    assert all(a > b for a, b in zip(jerks, jerks[1:])), jerks


def test_locked_frames_stay_byte_identical_and_presets_are_valid(clip):
    keep = np.zeros(clip.num_frames, bool)
    keep[100:140] = True
    out = adjust(clip, PRESETS["CARTOON"], keep=keep)
    assert np.array_equal(out.poses[keep], clip.poses[keep]) and not np.array_equal(out.poses, clip.poses)
    assert all(p.clamped() == p for p in PRESETS.values())
    assert Adjustments(mouth=500, smooth_body=-3).clamped() == Adjustments(mouth=200, smooth_body=0)


def test_closure_emphasis_closes_the_jaw_at_its_minima(clip):
    from model.adjust import closure_factor
    j = MOUTH[0]
    opening = np.linalg.norm(clip.poses[:, 3 * j:3 * j + 3], axis=1)
    f = closure_factor(opening, 1.0)
    mins = np.flatnonzero((opening[1:-1] <= opening[:-2]) & (opening[1:-1] < opening[2:])
                          & (opening[1:-1] < np.median(opening))) + 1
    assert len(mins) > 5 and np.allclose(f[mins], 0.0, atol=1e-6) and f.max() <= 1.0
    out = adjust(clip, Adjustments(closure=50))
    new_open = np.linalg.norm(out.poses[:, 3 * j:3 * j + 3], axis=1)
    assert np.allclose(new_open[mins], 0.5 * opening[mins], atol=1e-5)
    assert np.all(new_open <= opening + 1e-6)
    g = GESTURE[0]
    assert np.array_equal(out.poses[:, 3 * g:3 * g + 3], clip.poses[:, 3 * g:3 * g + 3])
