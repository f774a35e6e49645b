"""FBX export presets: re-import into a fresh Blender scene and read the file
with an independent reader (Assimp's command-line tool)."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import load_extension_package  # noqa: E402

load_extension_package()
from cospeech.addon import arkit_bake, bake, face_head, fbx_export, rig, rig_build  # noqa: E402
from cospeech.model.arkit import arkit_weights  # noqa: E402
from cospeech.model import skeleton as sk  # noqa: E402
from cospeech.model.motion import MotionClip  # noqa: E402

# preset -> (file units per Blender metre, the file's up axis): what an engine reads
FILE_UNITS = {"UNITY": (1.0, "Y"), "UNREAL": (100.0, "Z"), "GENERIC": (1.0, "Z")}


def _export(tmp_path, clip, preset, start=1):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 30
    arm, mesh = rig_build.build_default_rig()
    info = rig.detect_rig(arm)
    other = bake.bake_clip(info, clip.slice(0, 10), start, name="other take")
    take = bake.bake_clip(info, clip, start, name="chosen take")
    if face_head.available():     # the ICT head's ARKit face, as Generate bakes it
        head = bpy.data.objects[arm["cospeech_face_mesh"]]
        arkit_bake.bake_arkit(head, clip.slice(0, 10), start, other.action.name)
        arkit_bake.bake_arkit(head, clip, start, take.action.name)
    bake.activate_take(info, other.action)          # export must use the chosen one
    before = (scene.frame_start, scene.frame_end, arm.animation_data.action)
    path = fbx_export.export_take(info, take.action, str(tmp_path / f"{preset}.fbx"), preset)
    assert (scene.frame_start, scene.frame_end, arm.animation_data.action) == before
    global SOURCE_SHAPES
    SOURCE_SHAPES = _shape_sizes([o for o in scene.objects if o.type == "MESH"])
    return path


SOURCE_SHAPES: dict = {}


def _shape_sizes(meshes) -> dict:
    """{shape key: largest vertex offset from the basis, world metres} of Exp000 and jawOpen."""
    out = {}
    for ob in meshes:
        key = ob.data.shape_keys
        for name in ("Exp000", "jawOpen"):
            if key is None or name not in key.key_blocks:
                continue
            n = len(ob.data.vertices)
            a, b = np.zeros(3 * n), np.zeros(3 * n)
            key.key_blocks[0].data.foreach_get("co", a)
            key.key_blocks[name].data.foreach_get("co", b)
            scale = np.linalg.norm(np.array(ob.matrix_world)[:3, :3], axis=0).mean()
            out[name] = float(np.linalg.norm((b - a).reshape(-1, 3), axis=1).max() * scale)
    return out


@pytest.mark.parametrize("preset,frames", [("UNITY", None), ("UNREAL", 300), ("GENERIC", 300)])
def test_fbx_reimport_matches_capture(tmp_path, beat2_npz, preset, frames):
    clip = MotionClip.load(beat2_npz)
    if frames:
        clip = clip.slice(0, frames)
    path = _export(tmp_path, clip, preset)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    bpy.ops.import_scene.fbx(filepath=path)     # default settings, as a user imports: same size, same place
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == 1
    arm = arms[0]
    names = {b.name for b in arm.data.bones}
    assert names == set(sk.JOINT_NAMES) | {"root"}, "leaf bones or renamed bones in the file"
    meshes = {o.name: o for o in bpy.data.objects if o.type == "MESH"}
    mesh = next(o for o in meshes.values() if "Exp000" in o.data.shape_keys.key_blocks)
    key = mesh.data.shape_keys
    assert [k.name for k in key.key_blocks][1:] == [f"Exp{k:03d}" for k in range(100)]
    kact = key.animation_data.action
    assert kact is not None, "shape-key animation lost"
    head, want = _reimported_head(meshes, clip)
    # morph targets keep their size in the file (an Unreal export once scaled the mesh but not its keys)
    got = _shape_sizes(list(meshes.values()))
    assert set(got) == set(SOURCE_SHAPES)
    for name, size in SOURCE_SHAPES.items():
        assert got[name] == pytest.approx(size, rel=0.01), (preset, name, got[name], size)

    fk = sk.smplx_to_blender(sk.forward_kinematics(clip.poses, clip.trans))
    T = clip.num_frames
    first = int(round(arm.animation_data.action.frame_range[0]))    # the importer's animation offset
    for f in sorted({0, 1, T // 3, T // 2, T - 1}):
        bpy.context.scene.frame_set(first + f)
        bpy.context.view_layer.update()
        mw = np.array(arm.matrix_world)
        heads = np.array([(mw @ np.r_[np.array(arm.pose.bones[n].head), 1.0])[:3] for n in sk.JOINT_NAMES])
        err = np.abs(heads - fk[f]).max()
        assert err < 1e-3, f"{preset} frame {f}: {err * 1000:.2f} mm"
        vals = np.array([key.key_blocks[f"Exp{k:03d}"].value for k in range(100)])
        np.testing.assert_allclose(vals, clip.expressions[f], atol=2e-3)
        if head is not None:
            got = [head.data.shape_keys.key_blocks[n].value for n in ("jawOpen", "eyeBlink_L", "mouthPress_R")]
            np.testing.assert_allclose(got, want[f], atol=2e-3)
    if head is not None:
        assert head.data.shape_keys.animation_data.action is not None, "the head's ARKit animation was lost"


def _reimported_head(meshes: dict, clip):
    """The ICT head as re-imported (None when the face asset is not built) and
    the ARKit weights it must play: (T, 3) jawOpen, eyeBlinkLeft, mouthPressRight."""
    if not face_head.available():
        return None, None
    head = next(o for o in meshes.values() if o.data.shape_keys and "jawOpen" in o.data.shape_keys.key_blocks)
    assert len(head.data.shape_keys.key_blocks) == 54 and len(head.data.vertices) > 20000
    w = arkit_weights(clip, 0)
    from cospeech.model.arkit import ARKIT_NAMES
    return head, w[:, [ARKIT_NAMES.index(n) for n in ("jawOpen", "eyeBlinkLeft", "mouthPressRight")]]


@pytest.mark.skipif(shutil.which("assimp") is None, reason="Assimp CLI (Debian assimp-utils) not installed")
def test_fbx_independent_reader(tmp_path, beat2_npz):
    """Assimp's own FBX importer: node tree, skin bones, animation length, blend shapes.

    Assimp quirks met: ``assimp info`` counts as "Bones" only joints that skin
    vertices (jaw/eyes/root have no weights on the mannequin), and prints no
    morph-animation channels, so blend shapes are checked through Assimp's
    glTF conversion of the same import (morph targets on the mesh).  pyassimp
    5.2.5 crashes ("NULL pointer access") against Debian's libassimp 5.2.4.
    """
    clip = MotionClip.load(beat2_npz).slice(0, 120)
    path = _export(tmp_path, clip, "UNITY")
    out = subprocess.run(["assimp", "info", path], capture_output=True, text=True, check=True).stdout
    nodes = [line.split("╴", 1)[1].split(" (")[0] for line in out.splitlines() if "╴" in line]
    assert set(sk.JOINT_NAMES) <= set(nodes) and "root" in nodes
    assert not any(n.endswith("_end") for n in nodes), "leaf bones exported"
    assert "Animations:         1" in out
    gltf = tmp_path / "check.gltf"
    subprocess.run(["assimp", "export", path, str(gltf)], capture_output=True, check=True)
    g = json.loads(gltf.read_text())
    targets = {len(p.get("targets", [])) for m in g["meshes"] for p in m["primitives"]}
    assert 100 in targets                                    # the body's Exp000-Exp099
    assert 53 in targets or not face_head.available()        # the ICT head's keys (each material a primitive)
    assert max(len(s["joints"]) for s in g["skins"]) == 56
    xml = tmp_path / "check.assxml"
    subprocess.run(["assimp", "export", path, str(xml)], capture_output=True, check=True)
    head = xml.read_text()[:20_000_000]
    import re
    m = re.search(r'<Animation name="[^"]*" duration="([^"]+)" tick_cnt="([^"]+)"', head)
    assert m, "no animation in the file"
    duration, tps = float(m.group(1)), float(m.group(2))
    assert tps == pytest.approx(30.0) and duration == pytest.approx(clip.num_frames - 1)


def _assimp_nodes(path, tmp_path) -> dict:
    """``{node name: (parent name, 4x4 local matrix)}`` as Assimp reads the file (its XML dump)."""
    import xml.etree.ElementTree as ET
    xml = tmp_path / "nodes.assxml"
    subprocess.run(["assimp", "export", str(path), str(xml)], capture_output=True, check=True)
    text = xml.read_text(errors="replace")
    root = ET.fromstring(text[text.index("<Scene"):text.index("</Scene>") + len("</Scene>")])
    out = {}

    def walk(node, parent):
        m = np.array(node.find("Matrix4").text.split(), float).reshape(4, 4)
        out[node.get("name")] = (parent, m)
        for child in node.iterfind("NodeList/Node"):
            walk(child, node.get("name"))
    walk(root.find("Node"), None)
    return out


def _world(nodes: dict, name: str) -> np.ndarray:
    m = np.eye(4)
    while name is not None:
        parent, local = nodes[name]
        m = local @ m
        name = parent
    return m


@pytest.mark.skipif(shutil.which("assimp") is None, reason="Assimp CLI (Debian assimp-utils) not installed")
@pytest.mark.parametrize("preset", ["UNREAL", "UNITY"])
def test_fbx_size_in_the_engines_units(tmp_path, beat2_npz, preset):
    """What an engine reads: the unit the file declares (GlobalSettings ``UnitScaleFactor``,
    read by Blender's own FBX parser), the armature node's scale and the character's head
    height in file units (Assimp's node tree).  Unreal: centimetres, node scale 1, head at
    ~150 units; Unity: metres, node scale 1, head at ~1.5."""
    import io_scene_fbx.parse_fbx as parse_fbx
    clip = MotionClip.load(beat2_npz).slice(0, 10)
    path = _export(tmp_path, clip, preset)
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    bpy.context.scene.frame_set(1)
    head_m = (arm.matrix_world @ arm.pose.bones["head"].head)[2]     # Blender metres, first frame
    root, _version = parse_fbx.parse(path)
    settings = next(e for e in root.elems if e.id == b"GlobalSettings")
    props = next(e for e in settings.elems if e.id == b"Properties70")
    unit_cm = next(float(e.props[-1]) for e in props.elems if e.props[0] == b"UnitScaleFactor")
    units, up = FILE_UNITS[preset]
    assert unit_cm == pytest.approx(100.0 / units, rel=1e-6)          # cm per file unit: 1 (cm) or 100 (m)
    nodes = _assimp_nodes(path, tmp_path)
    arm_node = _world(nodes, arm.name)
    np.testing.assert_allclose(np.linalg.norm(arm_node[:3, :3], axis=0), 1.0, atol=1e-5)   # no x100 node
    head = _world(nodes, "head")[:3, 3]
    height = head["XYZ".index(up)]
    assert height == pytest.approx(head_m * units, rel=0.01), (preset, head, head_m)
    assert height * unit_cm == pytest.approx(head_m * 100.0, rel=0.01)   # the size an engine shows, in cm
