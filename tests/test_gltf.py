"""glTF 2.0 export of a take, read by readers we did not write: the Khronos
glTF-Validator and three.js's GLTFLoader under node (``tests/js``, installed
by ``tools/setup.sh test`` from its pinned package-lock.json)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.addon import arkit_bake, bake, face_head, gltf_export, rig, rig_build  # noqa: E402
from cospeech.addon.export_common import ExportError  # noqa: E402
from cospeech.model.motion import MotionClip  # noqa: E402
from blender_helpers import run  # noqa: E402

JS = REPO / "tests" / "js"


def node_check(path, bone: str, t0: float, t1: float) -> dict:
    """What the validator and three.js read from ``path`` (see tests/js/check_gltf.mjs)."""
    if shutil.which("node") is None or not (JS / "node_modules" / "three").is_dir():
        pytest.skip("node and tests/js/node_modules (npm ci --prefix tests/js, run by tools/setup.sh test) needed")
    out = subprocess.run(["node", str(JS / "check_gltf.mjs"), str(path), bone, str(t0), str(t1)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.usefixtures("registered_module")


def _take(beat2_npz, frames=61):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    arm, _mesh = rig_build.build_default_rig()
    info = rig.detect_rig(arm)
    clip = MotionClip.load(beat2_npz).slice(100, 100 + frames)
    take = bake.bake_clip(info, clip, 5, name="glTF take")
    if face_head.available():
        arkit_bake.bake_arkit(bpy.data.objects[arm["cospeech_face_mesh"]], clip, 5, take.action.name)
    bpy.context.view_layer.objects.active = arm
    return scene, arm, info, take


def test_glb_validates_and_three_js_plays_what_blender_plays(tmp_path, beat2_npz):
    scene, arm, info, take = _take(beat2_npz)
    before = (scene.frame_start, scene.frame_end, arm.animation_data.action.name, len(bpy.data.objects))
    path = tmp_path / "take.glb"
    assert run("export_gltf", filepath=str(path)) == {"FINISHED"}
    assert (scene.frame_start, scene.frame_end, arm.animation_data.action.name, len(bpy.data.objects)) == before
    f0, f1 = take.frame_start, take.frame_end
    want = {}
    for f in (f0, f0 + 30):
        scene.frame_set(f)
        h = arm.matrix_world @ arm.pose.bones["left_wrist"].head
        want[f] = np.array([h.x, h.z, -h.y])                       # Blender Z-up -> glTF Y-up
    got = node_check(path, "left_wrist", 0.0, 1.0)
    assert got["errors"] == 0, got["messages"]
    assert got["animations"] == 1
    assert got["duration"] == pytest.approx((f1 - f0) / 30.0, abs=1e-3)
    assert got["bones"] == len(arm.data.bones)
    # morph-target animation: the body's Exp### and the ICT head's ARKit keys (three.js
    # splits a multi-material mesh into one mesh per primitive: "<name>_1", "<name>_2" …)
    import re
    animated = {re.sub(r"_\d+$", "", t.split(".")[0]) for t in got["morph_track_names"]}
    want_meshes = {arm.name + "_mesh"} | ({arm["cospeech_face_mesh"]} if face_head.available() else set())
    assert animated == want_meshes, animated
    assert got["morph_targets"][arm.name + "_mesh"] == 100
    for (f, w), g in zip(want.items(), got["positions"]):
        assert np.abs(np.array(g) - w).max() < 1e-3, f"frame {f}: three.js {g}, Blender {w}"


def test_glb_bad_targets_leave_nothing(tmp_path, beat2_npz):
    scene, arm, info, take = _take(beat2_npz, frames=10)
    with pytest.raises(ExportError, match=r"must end with \.glb"):
        gltf_export.export_take(info, take.action, str(tmp_path / "take.gltf"))
    blocker = tmp_path / "notes.txt"                 # a file where the folder should be
    blocker.write_text("x")
    with pytest.raises(ExportError, match="Cannot create the folder"):
        gltf_export.export_take(info, take.action, str(blocker / "sub" / "take.glb"))
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if not os.access(ro, os.W_OK):             # root writes anywhere: only checked as a user
            with pytest.raises(ExportError, match="permission denied"):
                gltf_export.export_take(info, take.action, str(ro / "take.glb"))
    finally:
        os.chmod(ro, 0o755)
    assert list(ro.iterdir()) == []
    # a non-ASCII name works
    path = gltf_export.export_take(info, take.action, str(tmp_path / "tête à tête.glb"))
    assert os.path.isfile(path) and not [p for p in os.listdir(tmp_path) if "cospeech-" in p]
