"""Your own character, as a user brings it: the shared third-party characters
(`../shared/data/characters/`: a Ready Player Me avatar as glTF, a VRoid-made
FBX) imported with Blender's bundled importers at default settings, then
driven through the real operators: Generate → Regenerate Range → Adjust Take
→ save and reopen → FBX (Unreal preset) → re-import.

What is measured is what a user sees, found without the retarget code: the
foot, head and eye bones by their names in the file, world positions of the
evaluated rig.  Skips with a reason when ../shared is absent (the characters
are test data, never committed)."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import REPO, SHARED_DATA, load_extension_package, need  # noqa: E402

cs = load_extension_package()
from cospeech.addon import compat  # noqa: E402
from blender_helpers import add_strip, run  # noqa: E402

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"
CHARACTERS = {"rpm": SHARED_DATA / "characters" / "brunette-t.glb",
              "vroid": SHARED_DATA / "characters" / "test_kun" / "Test-Kun.fbx"}
#: vertical range of the capture's own pelvis (BEAT2 2_scott_0_1_1, 63.5 s), metres
CAPTURE_PELVIS_RANGE = 0.234


pytestmark = pytest.mark.usefixtures("registered_module")


def import_character(path):
    """A fresh scene with the character imported exactly as a user does (default options)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    s = scene.cospeech
    s.steps, s.seed, s.variations = 2, 0, 1
    if path.suffix == ".glb":
        bpy.ops.import_scene.gltf(filepath=str(path))
    else:
        bpy.ops.import_scene.fbx(filepath=str(path))
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == 1
    return scene, arms[0]


def _bones(arm, pattern, exclude=r"toe|end|top"):
    return [b.name for b in arm.data.bones if re.search(pattern, b.name, re.I) and not re.search(exclude, b.name, re.I)]


def feet(arm):
    return _bones(arm, r"foot")


def standing(arm, frames=None) -> dict:
    """World heights (Blender Z) of the lowest ankle, the hips and the head over ``frames``."""
    scene = bpy.context.scene
    out = {"ankle": [], "head": []}
    heads = _bones(arm, r"head")
    for f in (frames if frames is not None else [scene.frame_current]):
        scene.frame_set(int(f))
        mw = arm.matrix_world
        out["ankle"].append(min((mw @ arm.pose.bones[n].head)[2] for n in feet(arm)))
        out["head"].append((mw @ arm.pose.bones[heads[0]].head)[2])
    return {k: np.array(v) for k, v in out.items()}


def key_range(mesh, name, frames) -> float:
    scene, kb = bpy.context.scene, mesh.data.shape_keys.key_blocks[name]
    vals = []
    for f in frames:
        scene.frame_set(int(f))
        vals.append(kb.value)
    return float(np.ptp(vals)), float(np.max(np.abs(vals)))


@pytest.mark.parametrize("name", list(CHARACTERS))
def test_character_stands_on_its_floor_through_the_user_flow(name, tmp_path):
    path = need(CHARACTERS[name])
    scene, arm = import_character(path)
    assert len(feet(arm)) == 2, feet(arm)
    stood = standing(arm)
    add_strip(scene, ARCTIC)
    scene.cospeech.target = arm
    assert run("generate") == {"FINISHED"}
    take = arm.animation_data.action
    t0, t1 = int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"])
    frames = range(t0, t1 + 1, 3)
    got = standing(arm, frames)
    lift = float(np.median(got["ankle"]) - stood["ankle"][0])
    assert abs(lift) <= 0.03, f"{name}: median ankle {lift * 100:+.1f} cm from where it stood"
    assert np.ptp(got["ankle"]) < CAPTURE_PELVIS_RANGE
    tall = stood["head"][0] - stood["ankle"][0]
    assert np.all(got["head"] - got["ankle"] > 0.85 * tall), "the head sank towards the feet"

    # the eyes follow the generated eyes
    eyes = _bones(arm, r"eye", exclude=r"brow|lash|lid|highlight")
    keyed = {fc.data_path for fc in compat.action_fcurves(take)}
    assert eyes and all(any(f'"{e}"' in p and "rotation" in p for p in keyed) for e in eyes), eyes

    # Regenerate Range, Adjust Take: still on the floor
    scene.cospeech.regen_start, scene.cospeech.regen_end = t0 + 20, t0 + 50
    scene.cospeech.seed = 3
    bpy.context.view_layer.objects.active = arm
    assert run("regenerate_range") == {"FINISHED"}
    scene.cospeech.adjust_root = 150.0
    assert run("adjust_take") == {"FINISHED"}
    blend, arm_name = tmp_path / f"{name}.blend", arm.name
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    arm = bpy.data.objects[arm_name]
    again = standing(arm, frames)
    assert abs(float(np.median(again["ankle"]) - stood["ankle"][0])) <= 0.03

    # FBX for Unreal, read back by Blender's importer at default settings: the same size
    fbx = tmp_path / f"{name}.fbx"
    bpy.context.view_layer.objects.active = arm
    assert run("export_fbx", filepath=str(fbx), preset="UNREAL") == {"FINISHED"}
    rest_tall = _rest_height(arm)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(fbx))
    back = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(back) == 1
    assert _rest_height(back[0]) == pytest.approx(rest_tall, rel=0.01)
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(meshes) >= 2, "the character's meshes were left out of the FBX"


def _rest_height(arm) -> float:
    """Rest height of the head bone above the lowest foot bone (world units)."""
    mw = arm.matrix_world
    z = {n: (mw @ arm.data.bones[n].head_local)[2] for n in feet(arm) + _bones(arm, r"head")[:1]}
    return max(z.values()) - min(z.values())


def test_one_mouth_per_mesh():
    """The RPM avatar's head has the ARKit mouth and Oculus visemes: only ARKit moves by
    default, the visemes stay at rest; the per-character choice flips it."""
    path = need(CHARACTERS["rpm"])
    scene, arm = import_character(path)
    add_strip(scene, ARCTIC)
    scene.cospeech.target = arm
    head = bpy.data.objects["Wolf3D_Head"]
    assert run("generate") == {"FINISHED"}
    take = arm.animation_data.action
    frames = range(int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"]) + 1, 2)
    assert key_range(head, "jawOpen", frames)[0] > 0.1
    for v in ("viseme_aa", "viseme_O", "viseme_PP", "viseme_E"):
        assert key_range(head, v, frames)[1] == 0.0, f"{v} driven beside the ARKit mouth"
    assert take.get("cospeech_mouth") == "AUTO"
    assert head.data.shape_keys.animation_data.action.get("cospeech_mouth") == "ARKIT"

    arm.cospeech_mouth = "VISEMES"
    assert run("generate") == {"FINISHED"}
    assert key_range(head, "jawOpen", frames)[1] == 0.0
    assert key_range(head, "viseme_aa", frames)[0] > 0.05


def test_vroid_sranipal_keys_are_not_a_second_mouth():
    """Test-Kun carries ARKit jawOpen and SRanipal Jaw_Open (same canonical name): one moves."""
    path = need(CHARACTERS["vroid"])
    scene, arm = import_character(path)
    add_strip(scene, ARCTIC)
    scene.cospeech.target = arm
    assert run("generate") == {"FINISHED"}
    take = arm.animation_data.action
    frames = range(int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"]) + 1, 2)
    body = bpy.data.objects["Body"]
    assert key_range(body, "jawOpen", frames)[0] > 0.1
    for k in ("Jaw_Open", "AA", "PP", "Mouth_Smile_Left"):
        assert key_range(body, k, frames)[1] == 0.0, k


def test_cli_character_previews_and_bad_input(tmp_path):
    """`cospeech_cli.py speech.wav --character char.glb` with previews: the contact sheet frames
    the character (not a bone named `head`); a non-audio file is `error: …`, exit 2, no traceback."""
    path = need(CHARACTERS["rpm"])
    cli = [sys.executable, str(REPO / "tools" / "cospeech_cli.py"), "--out", str(tmp_path / "out"),
           "--steps", "2"]
    junk = tmp_path / "notes.wav"
    junk.write_text("this is not audio")
    bad = subprocess.run(cli + [str(junk), "--no-preview"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error: "), bad.stderr[-800:]
    assert "Traceback" not in bad.stderr
    not_blend = tmp_path / "char.blend"
    not_blend.write_text("no")
    bad = subprocess.run(cli + [str(ARCTIC), "--character", str(not_blend), "--no-preview"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "error: " in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-800:]
    ok = subprocess.run(cli + [str(ARCTIC), "--character", str(path)], capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr[-2000:]
    out = tmp_path / "out"
    for suffix in (".blend", ".fbx", ".npz", "_preview.png"):
        assert (out / f"arctic_a0007{suffix}").is_file(), suffix
    from PIL import Image
    sheet = np.asarray(Image.open(out / "arctic_a0007_preview.png").convert("L"), np.float32)
    tile = sheet[:, : sheet.shape[1] // 8]
    dark = tile < 0.8 * np.median(tile)            # the character against the light background
    rows = np.nonzero(dark.any(1))[0]
    assert len(rows) and rows.min() < 0.25 * tile.shape[0] and rows.max() > 0.75 * tile.shape[0], \
        "the contact sheet does not show the whole character"
