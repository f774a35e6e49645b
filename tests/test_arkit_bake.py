"""ARKit face on any mesh and Live Link CSV export, through the real
operators on a real generated take."""
from __future__ import annotations

import csv

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.addon import compat  # noqa: E402
from blender_helpers import add_strip, new_scene, run, snapshot  # noqa: E402

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"
#: A character's key names, in the variants real rigs use.
KEYS = ["Basis", "JawOpen", "eyeBlink_L", "EyeBlink_R", "mouthSmile_L", "viseme_aa", "browInnerUp"]


@pytest.fixture(scope="module", autouse=True)
def registered():
    cs.register()
    yield
    cs.unregister()


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
    assert set(curves) == {f'key_blocks["{k}"].value' for k in KEYS[1:] if k != "viseme_aa"}
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
