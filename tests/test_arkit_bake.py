"""ARKit face on any mesh and Live Link CSV export, through the real
operators on a real generated take."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.addon import compat, face_head  # noqa: E402
from cospeech.model.arkit import ARKIT_NAMES, VISEME_TABLE, canonical  # noqa: E402
from blender_helpers import add_strip, new_scene, run, snapshot  # noqa: E402

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"
#: A character's key names, in the variants real rigs use.
KEYS = ["Basis", "JawOpen", "eyeBlink_L", "EyeBlink_R", "mouthSmile_L", "viseme_aa", "browInnerUp"]


pytestmark = pytest.mark.usefixtures("registered_module")


def character_head():
    mesh = bpy.data.meshes.new("head")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    ob = bpy.data.objects.new("RPM_Head", mesh)
    bpy.context.scene.collection.objects.link(ob)
    for k in KEYS:
        ob.shape_key_add(name=k)
    return ob


def test_bake_arkit_onto_a_character_mesh():
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    assert run() == {"FINISHED"}
    head = character_head()
    bpy.context.view_layer.objects.active = arm
    for o in scene.objects:
        o.select_set(o == head)
    assert run("bake_arkit") == {"FINISHED"}
    act = head.data.shape_keys.animation_data.action
    curves = {fc.data_path: fc for fc in compat.action_fcurves(act)}
    visemes = os.path.exists(VISEME_TABLE)
    assert set(curves) == {f'key_blocks["{k}"].value' for k in KEYS[1:] if visemes or k != "viseme_aa"}
    jaw = curves['key_blocks["JawOpen"].value']
    co = np.zeros(2 * len(jaw.keyframe_points), np.float32)
    jaw.keyframe_points.foreach_get("co", co)
    assert co[0] == 1 and len(co) // 2 == 120 and co[1::2].std() > 0.01 and co[1::2].max() <= 1
    scene.cospeech.animate_face = False
    snap = snapshot()
    assert "Face is switched off" in run("bake_arkit") and snapshot() == snap


def test_live_link_export_reads_back(tmp_path):
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    run()
    path = tmp_path / "sub" / "take.csv"
    assert run("export_live_link", filepath=str(path), fps="60") == {"FINISHED"}
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][19] == "JawOpen" and len(rows) - 1 == 240 and len(rows[1]) == 63


def test_blinks_dial_reaches_live_link(tmp_path):
    """Adjust Take's Blinks dial is recorded on the take and used by the Live Link export."""
    scene, arm = new_scene()
    strip = add_strip(scene, ARCTIC)
    strip.frame_final_duration = strip.frame_final_duration      # the whole clip
    run()
    counts = {}
    for rate in (0.0, 40.0):
        scene.cospeech.adjust_blink_rate = rate
        assert run("adjust_take") == {"FINISHED"}
        path = tmp_path / f"blinks{int(rate)}.csv"
        assert run("export_live_link", filepath=str(path), fps="30") == {"FINISHED"}
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        col = rows[0].index("EyeBlinkLeft")
        counts[rate] = max(float(r[col]) for r in rows[1:])
    assert counts[0.0] == 0.0 and counts[40.0] > 0.5


needs_head = pytest.mark.skipif(not face_head.available(),
                                reason="ICT head asset not built (tools/build_face_assets.py needs ../shared/data)")


def _values(fc) -> np.ndarray:
    co = np.zeros(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co[1::2]


@needs_head
def test_default_rig_shows_the_ict_face(tmp_path):
    """Generate on an empty scene: the default rig carries the ICT head with its
    53 keys (51 of the 52 ARKit shapes; ICT has no tongueOut), the take drives
    them, the eyeballs turn with the eye bones, the mouth opens with jawOpen,
    and the Mouth dial reaches the face."""
    scene, _ = new_scene(with_rig=False)
    add_strip(scene, ARCTIC)
    assert run() == {"FINISHED"}
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    head = bpy.data.objects[arm["cospeech_face_mesh"]]
    names = [k.name for k in head.data.shape_keys.key_blocks][1:]
    assert len(names) == 53 and {canonical(n) for n in names} == set(ARKIT_NAMES) - {"tongueOut"}
    take = arm.animation_data.action
    assert f"{head.name}: 51/52 ARKit keys" in take["cospeech_arkit"]
    kact = head.data.shape_keys.animation_data.action
    assert kact.get("cospeech_arkit_of") == take.name
    curves = {fc.data_path: fc for fc in compat.action_fcurves(kact)}
    assert len(curves) == 53
    jaw = _values(curves['key_blocks["jawOpen"].value'])
    assert jaw.std() > 0.01 and 0 <= jaw.min() and jaw.max() <= 1
    # the evaluated head (skinning off, shape keys only): the teeth move with jawOpen
    head.modifiers["Armature"].show_viewport = False
    teeth_mat = [m.name for m in head.data.materials].index("CoSpeech_M_Teeth")
    teeth = sorted({i for p in head.data.polygons if p.material_index == teeth_mat for i in p.vertices})
    cos = []
    for f in (int(np.argmin(jaw)), int(np.argmax(jaw))):
        scene.frame_set(int(take["cospeech_frame_start"]) + f)
        ev = head.evaluated_get(bpy.context.evaluated_depsgraph_get())
        me = ev.to_mesh()
        cos.append(np.array([me.vertices[i].co for i in teeth]))
        ev.to_mesh_clear()
    head.modifiers["Armature"].show_viewport = True
    assert np.linalg.norm(cos[1] - cos[0], axis=1).max() > 0.001 * (jaw.max() - jaw.min()) / 0.1
    # eyes: the eyeball vertices follow the eye bones
    groups = {g.name for g in head.vertex_groups}
    assert {"head", "neck", "left_eye_smplhf", "right_eye_smplhf"} <= groups
    scene.cospeech.adjust_mouth = 0.0
    assert run("adjust_take") == {"FINISHED"}
    flat = _values({fc.data_path: fc for fc in compat.action_fcurves(kact)}['key_blocks["jawOpen"].value'])
    assert flat.std() < 1e-6 < jaw.std()
    path, head_name, take_name = tmp_path / "face.blend", head.name, take.name
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert bpy.data.objects[head_name].data.shape_keys.animation_data.action.get("cospeech_arkit_of") == take_name


@needs_head
def test_eyeballs_turn_with_the_eye_bones():
    from cospeech.addon import rig_build
    bpy.ops.wm.read_factory_settings(use_empty=True)
    arm, _ = rig_build.build_default_rig()
    head = bpy.data.objects[arm["cospeech_face_mesh"]]
    vg = head.vertex_groups["left_eye_smplhf"].index
    eye = [v.index for v in head.data.vertices if any(g.group == vg for g in v.groups)]
    deps = bpy.context.evaluated_depsgraph_get()

    def eye_centre():
        me = head.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
        c = np.array([me.vertices[i].co for i in eye]).mean(0)
        head.evaluated_get(deps).to_mesh_clear()
        return c
    front = max(eye, key=lambda i: -head.data.vertices[i].co.y)      # the cornea (Blender -Y is forward)
    before, c0 = np.array(head.data.vertices[front].co), eye_centre()
    arm.pose.bones["left_eye_smplhf"].rotation_quaternion = (0.9659, 0.0, 0.2588, 0.0)   # 30° yaw
    bpy.context.view_layer.update()
    me = head.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
    after = np.array(me.vertices[front].co)
    head.evaluated_get(deps).to_mesh_clear()
    assert np.linalg.norm(after - before) > 0.004            # the cornea swings ~6 mm
    assert np.linalg.norm(eye_centre() - c0) < 0.002         # about the eyeball's centre


def test_visemes_drivers_and_the_users_own_keys(tmp_path):
    """A VRChat-style viseme mesh is driven (when the table is built); a key
    with a driver and the user's own keyframes on another key are left as
    they were; a mesh with no matching keys is reported, not an error."""
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    run()
    mesh = bpy.data.meshes.new("avatar")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    ob = bpy.data.objects.new("Avatar", mesh)
    scene.collection.objects.link(ob)
    for k in ("Basis", "vrc.v_aa", "vrc.v_pp", "vrc.v_sil", "jawOpen", "Smile"):
        ob.shape_key_add(name=k)
    key = ob.data.shape_keys
    fc = key.driver_add('key_blocks["jawOpen"].value')
    fc.driver.expression = "0.25"
    smile = key.key_blocks["Smile"]
    for f, v in ((1, 0.0), (30, 0.8), (60, 0.1)):
        smile.value = v
        smile.keyframe_insert("value", frame=f)
    user_action = key.animation_data.action
    plain = bpy.data.objects.new("Plain", bpy.data.meshes.new("plain"))
    scene.collection.objects.link(plain)
    for o in scene.objects:
        o.select_set(o in (ob, plain))
    assert run("bake_arkit") == {"FINISHED"}
    act = key.animation_data.action
    assert act != user_action and user_action.use_fake_user
    paths = {fc.data_path for fc in compat.action_fcurves(act)}
    assert 'key_blocks["jawOpen"].value' not in paths                   # the driver wins
    assert 'key_blocks["Smile"].value' in paths                         # the user's keys keep playing
    if os.path.exists(VISEME_TABLE):
        assert {'key_blocks["vrc.v_aa"].value', 'key_blocks["vrc.v_pp"].value'} <= paths
    scene.frame_set(30)
    assert abs(key.key_blocks["Smile"].value - 0.8) < 1e-6 and abs(key.key_blocks["jawOpen"].value - 0.25) < 1e-6
    for o in scene.objects:
        o.select_set(o == plain)
    snap = snapshot()
    assert run("bake_arkit") == {"CANCELLED"} and snapshot() == snap     # WARNING: "Plain: no ARKit or viseme shape keys"


@needs_head
def test_constant_face_curves_are_one_key_and_expand_when_dialled():
    """Shapes the take holds still are baked as one key; the Blinks dial from
    0 to 40 per minute turns a one-key blink curve into a per-frame curve."""
    from cospeech.addon import arkit_bake, raw_store
    scene, _ = new_scene(with_rig=False)
    strip = add_strip(scene, ARCTIC)
    strip.frame_final_duration = strip.frame_final_duration
    assert run() == {"FINISHED"}
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    head = bpy.data.objects[arm["cospeech_face_mesh"]]
    take = arm.animation_data.action
    f0 = int(take["cospeech_frame_start"])
    T = int(take["cospeech_frame_end"]) - f0 + 1
    # the face as a take with Blinks 0 would be baked: blink curves hold still
    kact = arkit_bake.bake_arkit(head, raw_store.load_raw(take), f0, take.name, blink_rate=0.0)["action"]
    counts = {fc.data_path: len(fc.keyframe_points) for fc in compat.action_fcurves(kact)}
    assert counts['key_blocks["eyeBlink_L"].value'] == 1 and counts['key_blocks["cheekPuff_L"].value'] == 1
    assert counts['key_blocks["jawOpen"].value'] == T
    scene.cospeech.adjust_blink_rate = 40.0
    assert run("adjust_take") == {"FINISHED"}
    blink = next(fc for fc in compat.action_fcurves(kact) if fc.data_path == 'key_blocks["eyeBlink_L"].value')
    assert len(blink.keyframe_points) == T and _values(blink).max() > 0.5
    cheek = next(fc for fc in compat.action_fcurves(kact) if fc.data_path == 'key_blocks["cheekPuff_L"].value')
    assert len(cheek.keyframe_points) == 1                     # still constant: still one key
