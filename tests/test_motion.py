"""Motion clip format (numpy only, no Blender)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import SHARED_DATA, need
from model import skeleton as sk
from model.motion import MotionClip, MotionFormatError


def test_load_save_round_trip(tmp_path, beat2_npz):
    clip = MotionClip.load(beat2_npz)
    assert clip.num_frames == 1906 and clip.fps == 30 and clip.poses.shape == (1906, 165)
    clip.save(tmp_path / "out.npz")
    again = MotionClip.load(tmp_path / "out.npz")
    for k in ("poses", "expressions", "trans"):
        np.testing.assert_array_equal(getattr(again, k), getattr(clip, k))
    assert again.fps == 30
    raw = np.load(tmp_path / "out.npz")
    assert {"poses", "expressions", "trans", "betas", "mocap_frame_rate"} <= set(raw.files)


@pytest.mark.parametrize("key,bad,msg", [
    ("poses", np.zeros((10, 156)), r"'poses' has shape \(10, 156\); expected \(T, 165\)"),
    ("expressions", np.zeros((9, 100)), r"'expressions' has shape \(9, 100\); expected \(10, N\)"),
    ("trans", np.zeros((10, 2)), r"'trans' has shape \(10, 2\); expected \(10, 3\)"),
])
def test_malformed_file_names_key_and_shape(tmp_path, key, bad, msg):
    arrays = dict(poses=np.zeros((10, 165)), expressions=np.zeros((10, 100)), trans=np.zeros((10, 3)))
    arrays[key] = bad
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(MotionFormatError, match=msg):
        MotionClip.load(tmp_path / "bad.npz")


def test_not_an_npz_and_missing(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(MotionFormatError, match="not a readable"):
        MotionClip.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "nopose.npz", trans=np.zeros((3, 3)))
    with pytest.raises(MotionFormatError, match="'poses' missing"):
        MotionClip.load(tmp_path / "nopose.npz")
    with pytest.raises(FileNotFoundError):
        MotionClip.load(tmp_path / "absent.npz")
    with pytest.raises(MotionFormatError, match="NaN"):
        MotionClip(np.full((2, 165), np.nan), np.zeros((2, 100)), np.zeros((2, 3)))


def test_amass_style_file_without_expressions(tmp_path):
    np.savez(tmp_path / "amass.npz", poses=np.zeros((5, 165)), trans=np.ones((5, 3)),
             mocap_framerate=np.array(60.0))
    clip = MotionClip.load(tmp_path / "amass.npz")
    assert clip.fps == 60 and clip.expressions.shape == (5, 100) and not clip.expressions.any()


@pytest.mark.parametrize("fps", [24, 25, 60])
def test_resample_uses_rotation_interpolation(fps):
    T = 31
    angle = np.linspace(0, 3.0, T)              # large rotation about one axis
    poses = np.zeros((T, 165), np.float32)
    poses[:, 3 * 18 + 2] = angle                # left_elbow about z
    poses[:, 0:3] = Rotation.from_euler("y", np.linspace(0, 2.5, T)[:, None]).as_rotvec()
    clip = MotionClip(poses, np.tile(np.arange(T)[:, None], (1, 100)), np.zeros((T, 3)), 30)
    out = clip.resample(fps)
    assert out.fps == fps and out.num_frames == round(T * fps / 30)
    t = np.arange(out.num_frames) / fps
    np.testing.assert_allclose(out.poses[:, 3 * 18 + 2], np.clip(t * 30, 0, T - 1) * 0.1, atol=1e-5)
    got = Rotation.from_rotvec(out.poses[:, 0:3])
    want = Rotation.from_euler("y", (np.clip(t * 30, 0, T - 1) * 2.5 / (T - 1))[:, None])
    assert (got.inv() * want).magnitude().max() < 1e-5
    np.testing.assert_allclose(out.expressions[:, 7], np.clip(t * 30, 0, T - 1), atol=1e-4)
    back = out.resample(30)
    assert abs(back.num_frames - T) <= 1


def test_resample_does_not_blend_axis_angle():
    """Across the ±pi wrap, axis-angle vectors flip; slerp must take the short way."""
    r0 = Rotation.from_rotvec([0, 0, np.pi - 0.05])
    r1 = Rotation.from_rotvec([0, 0, -(np.pi - 0.05)])   # 0.1 rad away from r0
    poses = np.zeros((2, 165), np.float32)
    poses[0, :3], poses[1, :3] = r0.as_rotvec(), r1.as_rotvec()
    out = MotionClip(poses, np.zeros((2, 100)), np.zeros((2, 3)), 30).resample(60)
    mid = Rotation.from_rotvec(out.poses[1, :3])
    assert (mid.inv() * r0).magnitude() < 0.051


def test_skeleton_matches_smplx_and_shared():
    smplx_names = pytest.importorskip("smplx.joint_names").JOINT_NAMES[:55]
    assert tuple(smplx_names) == sk.JOINT_NAMES
    data = json.loads(need(SHARED_DATA / "skeleton" / "smplx55_skeleton.json").read_text())
    assert tuple(data["parents"]) == sk.PARENTS
    rest = sk.rest_joints()
    for name, pos in data["rest_joints_neutral_m"].items():
        if pos is not None:
            np.testing.assert_allclose(rest[sk.JOINT_INDEX[name]], pos, atol=1e-6)


def test_forward_kinematics_rest_and_translation():
    rest = sk.rest_joints()
    pos = sk.forward_kinematics(np.zeros((2, 165)), np.array([[0, 0, 0], [1, 2, 3]]))
    np.testing.assert_allclose(pos[0], rest)
    np.testing.assert_allclose(pos[1], rest + [1, 2, 3])
    # rotating the pelvis 90 degrees about Y swings the left hip to -Z (x -> -z)
    p = np.zeros((1, 165))
    p[0, 1] = np.pi / 2
    hip = sk.forward_kinematics(p, np.zeros((1, 3)))[0, 1] - rest[0]
    d = rest[1] - rest[0]
    np.testing.assert_allclose(hip, [d[2], d[1], -d[0]], atol=1e-9)
