"""Artist dials on a real generated take through the real operators:
100 % is bit-identical, 0 % holds the mean, locks and hand edits survive,
save + reopen + adjust, one undo, imported takes, refused while generating."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.addon import compat, raw_store, take_adjust  # noqa: E402
from cospeech.operators import generate_ops  # noqa: E402
from blender_helpers import add_strip, keys, new_scene, run  # noqa: E402

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"
JAW = ('pose.bones["jaw"].rotation_quaternion', 0)


pytestmark = pytest.mark.usefixtures("registered_module")


def generated():
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    assert run() == {"FINISHED"}
    return scene, arm, arm.animation_data.action


def dials(scene, **kw):
    s = scene.cospeech
    for name in ("mouth", "expression", "head", "gesture", "root"):
        setattr(s, f"adjust_{name}", kw.get(name, 100.0))
    s.adjust_smooth_face, s.adjust_smooth_body = kw.get("smooth_face", 0.0), kw.get("smooth_body", 0.0)
    s.adjust_closure = kw.get("closure", 0.0)


def jaw_quats(action):
    k = keys(action)
    return np.stack([k[('pose.bones["jaw"].rotation_quaternion', c)][:, 1] for c in range(4)], 1)


def test_100_percent_is_bit_identical_and_0_holds_the_mean():
    scene, arm, take = generated()
    assert raw_store.load_raw(take) is not None
    before = keys(take)
    dials(scene)
    assert run("adjust_take") == {"FINISHED"}
    assert all(np.array_equal(before[k], v) for k, v in keys(take).items())
    dials(scene, mouth=0)
    run("adjust_take")
    q = jaw_quats(take)
    assert np.abs(q - q[0]).max() < 1e-5, "mouth 0 % must hold the jaw at its mean"
    dials(scene, mouth=200)
    run("adjust_take")
    raw = raw_store.load_raw(take)
    rv = raw.poses[:, 66:69].astype(np.float64)
    mean = Rotation.from_rotvec(rv).mean()
    ang = np.linalg.norm((mean.inv() * Rotation.from_rotvec(rv)).as_rotvec(), axis=1)
    q2 = jaw_quats(take)
    got = np.linalg.norm((mean.inv() * Rotation.from_quat(q2[:, [1, 2, 3, 0]])).as_rotvec(), axis=1)
    assert np.abs(got - 2 * ang[:len(got)]).max() < 1e-4     # 30 fps scene: frames match the raw output


def test_locked_frames_and_hand_edits_survive():
    scene, arm, take = generated()
    fcs = {(fc.data_path, fc.array_index): fc for fc in compat.action_fcurves(take)}
    for fc in fcs.values():                                   # the user selects the keys of frame 40
        for kp in fc.keyframe_points:
            kp.select_control_point = int(round(kp.co[0])) == 40
    head = fcs[('pose.bones["head"].rotation_quaternion', 1)]
    head.keyframe_points[10].co[1] += 0.05                   # and edits the head by hand
    head.update()
    before = keys(take)
    dials(scene, mouth=160, head=150, gesture=150, expression=150)
    msg = run("adjust_take")
    assert msg == {"FINISHED"}
    after = keys(take)
    hk = ('pose.bones["head"].rotation_quaternion', 1)
    assert np.array_equal(after[hk], before[hk]), "a hand-edited channel was overwritten"
    for k, co in before.items():
        at40 = co[:, 0] == 40
        assert np.array_equal(after[k][at40], co[at40])
    assert not np.array_equal(after[JAW], before[JAW])
    assert run("adjust_take", overwrite_edited=True) == {"FINISHED"}
    assert not np.array_equal(keys(take)[hk], before[hk])


def test_save_reopen_adjust_and_undo(tmp_path):
    scene, arm, take = generated()
    path = tmp_path / "shot.blend"
    name, take_name = arm.name, take.name
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    scene, arm = bpy.context.scene, bpy.data.objects[name]
    bpy.context.view_layer.objects.active = arm
    take = bpy.data.actions[take_name]
    original = keys(take)
    with bpy.context.temp_override(window=bpy.context.window_manager.windows[0]):
        bpy.ops.ed.undo_push(message="before adjust")
        dials(scene, gesture=180, smooth_body=2)
        assert bpy.ops.cospeech.adjust_take("EXEC_DEFAULT", True) == {"FINISHED"}
        assert not all(np.array_equal(original[k], v) for k, v in keys(bpy.data.actions[take_name]).items())
        bpy.ops.ed.undo()
    restored = keys(bpy.data.actions[take_name])
    assert all(np.array_equal(original[k], restored[k]) for k in original)


def test_take_without_raw_output_uses_its_keys():
    scene, arm, take = generated()
    del take[raw_store.RAW]
    dials(scene, mouth=0)
    from cospeech.addon import rig
    res = take_adjust.adjust_take(rig.detect_rig(arm), take, scene.cospeech.adjustments(), scene)
    assert res["source"] == "keys" and res["written"] > 300 and not res["skipped_edited"]
    assert run("adjust_take") == {"FINISHED"}        # the operator reports it as a warning
    q = jaw_quats(take)
    assert np.abs(q - q[0]).max() < 1e-5


def test_refused_while_generating():
    scene, arm, take = generated()
    generate_ops.RUNNING["job"] = object()
    try:
        assert "A generation is running" in run("adjust_take")
    finally:
        generate_ops.RUNNING["job"] = None


def test_presets_set_the_dials():
    scene, arm, take = generated()
    scene.cospeech.adjust_preset = "CARTOON"
    assert scene.cospeech.adjust_mouth == 160.0 and scene.cospeech.adjust_gesture == 150.0
    assert run("adjust_take") == {"FINISHED"}
    assert take_adjust.settings_of(take).mouth == 160.0
    scene.cospeech.adjust_preset = "NATURAL"
    assert scene.cospeech.adjust_mouth == 100.0


def test_regenerating_an_adjusted_take_does_not_compound_the_dials():
    """Adjust (gestures 180 %) → Regenerate Range → Adjust again with the same
    dials: keys barely move (only the take's mean pose shifts), where applying
    the dials on top of dialed keys would scale the gestures by 1.8 again."""
    scene, arm, take = generated()
    raw_keys = keys(take)
    dials(scene, gesture=180)
    assert run("adjust_take") == {"FINISHED"}
    dialed = keys(take)
    arm_paths = [k for k in dialed if "left_elbow" in k[0] or "right_shoulder" in k[0]]
    effect = max(np.abs(dialed[k][:, 1] - raw_keys[k][:, 1]).max() for k in arm_paths)
    assert effect > 0.01

    t0 = int(take["cospeech_frame_start"])
    s = scene.cospeech
    s.regen_start, s.regen_end, s.seed = t0 + 20, t0 + 50, 4
    assert run("regenerate_range") == {"FINISHED"}
    new = arm.animation_data.action
    before = keys(new)
    frames = before[arm_paths[0]][:, 0]
    outside = (frames < t0 + 20) | (frames > t0 + 50)
    for k in arm_paths:                                 # the splice keeps every key outside the range
        np.testing.assert_array_equal(before[k][outside], dialed[k][outside])
    assert take_adjust.settings_of(new).gesture == 180

    dials(scene, gesture=180)
    assert run("adjust_take") == {"FINISHED"}
    after = keys(new)
    change = max(np.abs(after[k][:, 1] - before[k][:, 1]).max() for k in arm_paths)
    assert change < 0.25 * effect, f"re-applying the same dials moved keys by {change:.4f} (dial effect {effect:.4f})"


def test_lip_closure_uses_the_takes_audio_cue():
    """Generate stores the audio's closure cue with the raw output; Lip Closure
    100 % shuts the jaw where the cue is 1 and leaves it where the cue is 0."""
    scene, arm, take = generated()
    cue = raw_store.load_cue(take)
    raw = raw_store.load_raw(take)
    assert cue is not None and len(cue) == raw.num_frames and cue.max() > 0.5 and cue.min() == 0.0
    from cospeech.addon.generation import Job          # Regenerate Range: the window's cue goes into the take's
    job = Job(None, None, None, "moderate", 2.0, [0], 8, "cpu", frozenset())
    T = len(cue)
    job.base_take, job.full_known, job.window_start = take, raw, 10
    job.full_mask = np.ones(T, bool)
    job.full_mask[30:50] = False                         # regenerated frames, inside the window [10, 70)
    job.cue = np.full(60, 0.25, np.float32)
    whole = job.whole_cue()
    assert len(whole) == T and np.all(whole[30:50] == 0.25)
    np.testing.assert_array_equal(np.delete(whole, np.s_[30:50]), np.delete(cue, np.s_[30:50]))
    before = jaw_quats(take)
    dials(scene, closure=100)
    assert run("adjust_take") == {"FINISHED"}
    after = jaw_quats(take)
    angle = lambda q: 2 * np.arccos(np.clip(np.abs(q[:, 0]), 0, 1))   # noqa: E731
    c = np.asarray(cue, np.float64)[:len(before)]       # scene at 30 fps: one key per model frame
    assert len(c) == len(before) and (c > 0.3).any() and (c == 0).any()
    np.testing.assert_allclose(angle(after), (1 - c) * angle(before), atol=2e-4)
