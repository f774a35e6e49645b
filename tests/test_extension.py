"""The repository is a valid Blender extension that registers cleanly."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.addon import bake, compat, rig, rig_build  # noqa: E402
from cospeech.model.motion import MotionClip  # noqa: E402


def blender_ext_script() -> Path:
    path = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not path.is_file():
        pytest.fail(f"blender_ext.py not found inside the bpy wheel at {path}")
    return path


def test_manifest_passes_blenders_validator():
    res = subprocess.run([sys.executable, str(blender_ext_script()), "validate", str(REPO)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "Success" in res.stdout, res.stdout + res.stderr


def test_register_unregister_twice(empty_scene):
    for _ in range(2):
        cs.register()
        assert hasattr(bpy.types.Scene, "cospeech")
        assert hasattr(bpy.ops.cospeech, "import_motion")
        assert bpy.types.COSPEECH_PT_view3d.is_registered
        cs.unregister()
        assert not hasattr(bpy.types.Scene, "cospeech")


def test_model_never_imports_bpy():
    res = subprocess.run([sys.executable, "-c",
                          "import sys; sys.path.insert(0, %r); import model.motion, model.skeleton; "
                          "print('bpy' in sys.modules)" % str(REPO)], capture_output=True, text=True)
    assert res.stdout.strip() == "False", res.stderr
    for py in (REPO / "model").rglob("*.py"):
        text = py.read_text()
        assert "import bpy" not in text and "from bpy" not in text, py


def test_import_motion_operator(empty_scene, cospeech, beat2_npz, tmp_path):
    empty_scene.render.fps = 30
    empty_scene.frame_set(5)
    res = bpy.ops.cospeech.import_motion(filepath=str(beat2_npz))
    assert res == {"FINISHED"}
    arm = bpy.context.active_object
    assert arm.type == "ARMATURE" and arm.animation_data.action.get("cospeech_take")
    assert arm.animation_data.action["cospeech_frame_start"] == 5
    # a second import lands on the same rig as a new take; the first survives
    first = arm.animation_data.action
    assert bpy.ops.cospeech.import_motion(filepath=str(beat2_npz)) == {"FINISHED"}
    assert arm.animation_data.action != first and first.name in bpy.data.actions
    assert len(bake.takes_of(arm)) == 2
    # a malformed file is refused and nothing changes
    np.savez(tmp_path / "bad.npz", poses=np.zeros((4, 10)))
    n_actions = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match="'poses' has shape"):
        bpy.ops.cospeech.import_motion(filepath=str(tmp_path / "bad.npz"))
    assert len(bpy.data.actions) == n_actions


def test_export_and_take_operators(empty_scene, cospeech, beat2_npz, tmp_path):
    empty_scene.render.fps = 30
    clip = MotionClip.load(beat2_npz).slice(0, 40)
    arm, _ = rig_build.build_default_rig()
    bpy.context.view_layer.objects.active = arm
    info = rig.detect_rig(arm)
    t1 = bake.bake_clip(info, clip, 1, name="a")
    t2 = bake.bake_clip(info, clip, 1, name="b")
    assert bpy.ops.cospeech.set_take(action=t1.action.name) == {"FINISHED"}
    assert arm.animation_data.action == t1.action
    out = tmp_path / "take.fbx"
    assert bpy.ops.cospeech.export_fbx(filepath=str(out), preset="UNREAL") == {"FINISHED"}
    assert out.stat().st_size > 10_000
    name = t2.action.name
    assert bpy.ops.cospeech.delete_take(action=name) == {"FINISHED"}
    assert name not in bpy.data.actions and t1.action.name in bpy.data.actions


def _synthetic_smplx_npz(path, V=300, E=20):
    """A tiny file in the SMPL-X npz layout (random geometry, real key names/shapes)."""
    rng = np.random.default_rng(0)
    from cospeech.model import skeleton as sk
    joints = sk.rest_joints()
    owner = rng.integers(0, 55, V)
    v = joints[owner] + rng.normal(0, 0.01, (V, 3))
    W = np.zeros((V, 55))
    W[np.arange(V), owner] = 1.0
    J = np.zeros((55, V))
    for j in range(55):
        idx = np.nonzero(owner == j)[0]
        if len(idx) == 0:
            idx = np.array([j])
            v[j] = joints[j]
            owner[j] = j
            W[j] = 0
            W[j, j] = 1
        J[j, idx] = 1.0 / len(idx)
    shapedirs = rng.normal(0, 0.001, (V, 3, 300 + E))
    np.savez(path, v_template=v, f=rng.integers(0, V, (400, 3)), J_regressor=J, weights=W,
             shapedirs=shapedirs, kintree_table=np.zeros((2, 55), np.int64))
    return J @ v, shapedirs


def test_rig_from_users_smplx_model(empty_scene, beat2_npz, tmp_path):
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    joints, shapedirs = _synthetic_smplx_npz(path)
    arm, mesh = rig_build.build_smplx_model_rig(str(path))
    info = rig.detect_rig(arm)
    assert info.kind == "smplx" and info.expression_meshes == [(mesh, 20)]
    heads = np.array([tuple(arm.data.bones[n].head_local) for n in rig.sk.JOINT_NAMES])
    np.testing.assert_allclose(heads, rig.sk.smplx_to_blender(joints + rig.STANDING_SHIFT), atol=1e-5)
    kb = mesh.data.shape_keys.key_blocks
    d = np.array([tuple(kb["Exp003"].data[i].co) for i in range(5)]) - \
        np.array([tuple(kb["Basis"].data[i].co) for i in range(5)])
    np.testing.assert_allclose(d, rig.sk.smplx_to_blender(shapedirs[:5, :, 303]), atol=1e-6)
    assert sum(len(vg.name) > 0 for vg in mesh.vertex_groups) >= 50
    clip = MotionClip.load(beat2_npz).slice(0, 20)
    take = bake.bake_clip(info, clip, 1)
    assert len(take.key_actions) == 1 and len(compat.action_fcurves(take.key_actions[0])) == 20
    bad = tmp_path / "bad.npz"
    np.savez(bad, v_template=np.zeros((10, 3)))
    with pytest.raises(rig.RigError, match="key 'f' missing"):
        rig_build.build_smplx_model_rig(str(bad))
