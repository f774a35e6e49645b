import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import numpy as np
import pytest

from model.motion import MotionClip
from model.representation import (FRAME_DIM, MIRROR_PERM, Normaliser, clip_to_frames, frames_to_clip,
                                   mirror_clip)
from model.skeleton import JOINT_NAMES, forward_kinematics

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAPTURE = SHARED / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz"


def _random_clip(T=50, seed=0):
    rng = np.random.default_rng(seed)
    rv = rng.standard_normal((T, 55, 3))
    rv *= (rng.random((T, 55, 1)) * 3.0) / np.linalg.norm(rv, axis=-1, keepdims=True)  # angles < pi
    return MotionClip(rv.reshape(T, 165), rng.standard_normal((T, 100)), rng.standard_normal((T, 3)))


def _check_roundtrip(clip):
    frames = clip_to_frames(clip)
    assert frames.shape == (clip.num_frames, FRAME_DIM)
    norm = Normaliser.fit(frames)
    back = norm.decode(norm.encode(clip))
    assert np.abs(back.poses - clip.poses).max() < 1e-4
    assert np.abs(back.expressions - clip.expressions).max() < 1e-4
    assert np.abs(back.trans - clip.trans).max() < 1e-5
    norm2 = Normaliser.from_json(norm.to_json())
    assert np.array_equal(norm2.mean, norm.mean) and np.array_equal(norm2.std, norm.std)


def test_roundtrip_random():
    _check_roundtrip(_random_clip())


@pytest.mark.skipif(not CAPTURE.is_file(), reason=f"BEAT2 capture not found at {CAPTURE}")
def test_roundtrip_capture():
    _check_roundtrip(MotionClip.load(CAPTURE))


def test_unnormalised_roundtrip_exact():
    clip = _random_clip(seed=3)
    back = frames_to_clip(clip_to_frames(clip))
    assert np.abs(back.poses - clip.poses).max() < 1e-5


def test_mirror_perm_swaps_sides():
    for i, j in enumerate(MIRROR_PERM):
        a, b = JOINT_NAMES[i], JOINT_NAMES[j]
        if a.startswith("left_"):
            assert b == "right_" + a[5:]
        elif a.startswith("right_"):
            assert b == "left_" + a[6:]
        else:
            assert i == j


@pytest.mark.skipif(not CAPTURE.is_file(), reason=f"BEAT2 capture not found at {CAPTURE}")
def test_mirror_is_a_reflection_of_joint_positions():
    from model.skeleton import rest_joints
    try:
        rest_joints()
    except FileNotFoundError as exc:
        pytest.skip(f"rest skeleton unavailable: {exc}")
    clip = MotionClip.load(CAPTURE).slice(0, 40)
    m = mirror_clip(clip)
    rest = rest_joints().copy()
    # use a left-right symmetric rest skeleton so the mirror is exact
    sym = 0.5 * (rest + rest[list(MIRROR_PERM)] * np.array([-1, 1, 1]))
    p = forward_kinematics(clip.poses, clip.trans, sym)
    pm = forward_kinematics(m.poses, m.trans, sym)
    expected = p[:, list(MIRROR_PERM)] * np.array([-1, 1, 1])
    assert np.abs(pm - expected).max() < 1e-5
    assert np.array_equal(mirror_clip(m).poses, clip.poses)
