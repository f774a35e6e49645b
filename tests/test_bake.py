"""Default rig + baking on real Blender, checked against the BEAT2 capture."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.addon import bake, compat, rig, rig_build  # noqa: E402
from cospeech.model import skeleton as sk  # noqa: E402
from cospeech.model.motion import MotionClip  # noqa: E402

SAMPLE_FRAMES = [0, 1, 57, 400, 999, 1905]


def _pose_world_heads(arm) -> np.ndarray:
    """(55, 3) world positions of the SMPL-X bone heads, Blender axes."""
    mw = np.array(arm.matrix_world)
    heads = np.array([tuple(arm.pose.bones[n].head) + (1.0,) for n in sk.JOINT_NAMES])
    return (heads @ mw.T)[:, :3]


def test_default_rig_structure(empty_scene):
    arm, mesh = rig_build.build_default_rig()
    names = [b.name for b in arm.data.bones]
    assert names.count("root") == 1 and set(sk.JOINT_NAMES) <= set(names)
    assert arm.data.bones["pelvis"].parent.name == "root"
    for j, p in enumerate(sk.PARENTS):
        if p >= 0:
            assert arm.data.bones[sk.JOINT_NAMES[j]].parent.name == sk.JOINT_NAMES[p]
    # bones point straight up with roll 0: local axes equal SMPL-X axes
    m = np.array(arm.data.bones["left_elbow"].matrix_local)[:3, :3]
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-6)
    keys = mesh.data.shape_keys.key_blocks
    assert [k.name for k in keys][1:] == [f"Exp{k:03d}" for k in range(100)]
    assert len(mesh.vertex_groups) >= 50 and "left_index1" in mesh.vertex_groups
    info = rig.detect_rig(arm)
    assert info.kind == "smplx" and info.expression_meshes == [(mesh, 100)]
    # rest heads equal the skeleton's rest joints lifted to the standing trans (Blender axes),
    # so the rig stands on the floor before any take: ankles 5-12 cm up, like a person's
    heads = _pose_world_heads(arm)
    np.testing.assert_allclose(heads, sk.smplx_to_blender(sk.rest_joints() + rig.STANDING_SHIFT), atol=1e-5)
    ankles = heads[[sk.JOINT_INDEX["left_ankle"], sk.JOINT_INDEX["right_ankle"]], 2]
    assert np.all((ankles > 0.05) & (ankles < 0.12)), ankles


def test_bake_round_trip_beat2(empty_scene, beat2_npz):
    clip = MotionClip.load(beat2_npz)
    arm, mesh = rig_build.build_default_rig()
    info = rig.detect_rig(arm)
    empty_scene.render.fps = 30
    take = bake.bake_clip(info, clip, frame_start=1, name="beat2")
    assert take.frame_start == 1 and take.frame_end == clip.num_frames
    fk = sk.smplx_to_blender(sk.forward_kinematics(clip.poses, clip.trans))
    key = mesh.data.shape_keys
    for f in SAMPLE_FRAMES:
        empty_scene.frame_set(1 + f)
        for j, name in enumerate(sk.JOINT_NAMES):
            q = np.array(arm.pose.bones[name].rotation_quaternion)
            r = clip.poses[f, 3 * j:3 * j + 3].astype(np.float64)
            ang = np.linalg.norm(r)
            want = np.r_[np.cos(ang / 2), (r / ang if ang > 0 else r) * np.sin(ang / 2)]
            assert min(np.abs(q - want).max(), np.abs(q + want).max()) < 1e-4, (f, name)
        np.testing.assert_allclose(np.array(arm.pose.bones["pelvis"].location), clip.trans[f] - rig.STANDING_SHIFT, atol=1e-4)
        vals = np.array([key.key_blocks[f"Exp{k:03d}"].value for k in range(100)])
        np.testing.assert_allclose(vals, clip.expressions[f], atol=1e-4)
        bpy.context.view_layer.update()
        err = np.abs(_pose_world_heads(arm) - fk[f]).max()
        assert err < 1e-3, f"frame {f}: world joint error {err * 1000:.3f} mm"


def test_takes_are_never_overwritten(empty_scene, beat2_npz):
    clip = MotionClip.load(beat2_npz).slice(0, 60)
    arm, _ = rig_build.build_default_rig()
    info = rig.detect_rig(arm)
    hand = bpy.data.actions.new("hand made")
    compat.assign_action(arm, hand)
    t1 = bake.bake_clip(info, clip, 1, name="take")
    t2 = bake.bake_clip(info, clip, 1, name="take")
    assert t1.action != t2.action and t1.action.name in bpy.data.actions
    assert arm.animation_data.action == t2.action
    assert hand.use_fake_user and "hand made" in bpy.data.actions
    assert [a.name for a in bake.takes_of(arm)] == sorted([t1.action.name, t2.action.name])
    assert len(compat.action_fcurves(t1.action)) == 55 * 4 + 3


@pytest.mark.parametrize("fps", [24, 25, 60])
def test_bake_resamples_to_scene_fps(empty_scene, beat2_npz, fps):
    clip = MotionClip.load(beat2_npz).slice(0, 90)   # 3 s
    arm, _ = rig_build.build_default_rig()
    empty_scene.render.fps, empty_scene.render.fps_base = fps, 1.0
    take = bake.bake_clip(rig.detect_rig(arm), clip, 10)
    assert take.frame_end - take.frame_start + 1 == 3 * fps
    # time t = 1 s is scene frame 10 + fps and clip frame 30
    empty_scene.frame_set(10 + fps)
    np.testing.assert_allclose(np.array(arm.pose.bones["pelvis"].location), clip.trans[30] - rig.STANDING_SHIFT, atol=1e-4)


def test_parts_switch_channels_off(empty_scene, beat2_npz):
    clip = MotionClip.load(beat2_npz).slice(0, 30)
    arm, _ = rig_build.build_default_rig()
    take = bake.bake_clip(rig.detect_rig(arm), clip, 1, parts={"face", "hands"})
    paths = {fc.data_path for fc in compat.action_fcurves(take.action)}
    assert 'pose.bones["jaw"].rotation_quaternion' in paths
    assert 'pose.bones["left_index1"].rotation_quaternion' in paths
    assert not any('"left_elbow"' in p or '"pelvis"' in p for p in paths)
    assert take.key_actions


def test_flame_rig_and_wrong_armature(empty_scene, beat2_npz):
    clip = MotionClip.load(beat2_npz).slice(0, 30)
    empty_scene.render.fps = 30
    arm_data = bpy.data.armatures.new("FLAME")
    ob = bpy.data.objects.new("FLAME", arm_data)
    empty_scene.collection.objects.link(ob)
    bpy.context.view_layer.objects.active = ob
    bpy.ops.object.mode_set(mode="EDIT")
    for n in ("root", "neck", "jaw", "left_eye", "right_eye"):
        b = arm_data.edit_bones.new(n)
        b.head, b.tail = (0, 0, 0), (0, 0, 0.05)
    bpy.ops.object.mode_set(mode="OBJECT")
    me = bpy.data.meshes.new("head")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    head = bpy.data.objects.new("head", me)
    empty_scene.collection.objects.link(head)
    head.parent = ob
    head.shape_key_add(name="Basis")
    for k in range(50):
        head.shape_key_add(name=f"Exp{k:03d}")
    info = rig.detect_rig(ob)
    assert info.kind == "flame" and info.expression_meshes == [(head, 50)]
    bake.bake_clip(info, clip, 1)
    empty_scene.frame_set(5)
    r = clip.poses[4, 66:69].astype(np.float64)
    q = np.array(ob.pose.bones["jaw"].rotation_quaternion)
    assert abs(abs(q[0]) - np.cos(np.linalg.norm(r) / 2)) < 1e-4
    assert abs(head.data.shape_keys.key_blocks["Exp049"].value - clip.expressions[4, 49]) < 1e-4

    other = bpy.data.objects.new("Mixamo", bpy.data.armatures.new("Mixamo"))
    empty_scene.collection.objects.link(other)
    with pytest.raises(rig.RigError, match="missing 55 of 55 SMPL-X bones.*left_eye"):
        rig.detect_rig(other)
    with pytest.raises(rig.RigError, match="active object is 'head'"):
        rig.detect_rig(head)
