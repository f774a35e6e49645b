"""Build SMPL-X rigs: the armature (bones on the SMPL-X joints, local axes =
SMPL-X axes), a skinned mesh with ``Exp###`` shape keys, the licence-free
default rig (SMPL-X skeleton + the mannequin-x ``wooden`` mesh + the ICT
head) and a rig from the user's own licensed SMPL-X model file.  Every rig
built here stands on the floor at rest (:data:`addon.rig.STANDING_SHIFT`)."""
from __future__ import annotations

import os

import bpy
import numpy as np

from ..model import skeleton as sk
from . import face_head
from .rig import EXP_SLIDER_RANGE, ROOT_BONE, STANDING_SHIFT, TRANS_ORIGIN, RigError, exp_key_name


def _bone_length(j: int) -> float:
    if j >= 25:
        return 0.015
    if j in (22, 23, 24):
        return 0.02
    return 0.06


def build_armature(name: str, rest: np.ndarray, collection=None):
    """Create an SMPL-X armature object (``root`` + 55 joint bones).

    Args:
        name: object / armature data name.
        rest: (55, 3) rest joint positions, metres, SMPL-X axes.
        collection: where to link it (default: the scene collection).
    Returns:
        The armature object (object transform identity, quaternion rotation mode).
    """
    rest_b = sk.smplx_to_blender(np.asarray(rest, np.float64))
    arm = bpy.data.armatures.new(name)
    ob = bpy.data.objects.new(name, arm)
    (collection or bpy.context.scene.collection).objects.link(ob)
    # Edit bones need edit mode on the armature; keep the user's mode/selection.
    view_layer = bpy.context.view_layer
    prev_active = view_layer.objects.active
    prev_mode = prev_active.mode if prev_active is not None else "OBJECT"
    if prev_active is not None and prev_mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = ob
    bpy.ops.object.mode_set(mode="EDIT")
    eb = arm.edit_bones
    root = eb.new(ROOT_BONE)
    root.head = (0.0, 0.0, 0.0)
    root.tail = (0.0, 0.0, 0.1)
    made = []
    for j, jname in enumerate(sk.JOINT_NAMES):
        b = eb.new(jname)
        b.head = tuple(rest_b[j])
        b.tail = tuple(rest_b[j] + np.array([0.0, 0.0, _bone_length(j)]))
        b.roll = 0.0
        b.use_connect = False
        made.append(b)
    for j, p in enumerate(sk.PARENTS):
        made[j].parent = root if p < 0 else made[p]
    bpy.ops.object.mode_set(mode="OBJECT")
    for pb in ob.pose.bones:
        pb.rotation_mode = "QUATERNION"
    view_layer.objects.active = prev_active
    if prev_active is not None and prev_mode != "OBJECT" and prev_active.name in view_layer.objects:
        bpy.ops.object.mode_set(mode=prev_mode)
    return ob


def build_skinned_mesh(name: str, armature, vertices: np.ndarray, faces: np.ndarray,
                       joint_weights: dict[str, tuple[np.ndarray, np.ndarray]],
                       exp_deltas, num_exp: int, collection=None):
    """Create a mesh bound to ``armature`` with vertex groups and Exp shape keys.

    Args:
        vertices: (V, 3) metres, SMPL-X axes.
        faces: (F, 3) int vertex indices (triangles).
        joint_weights: bone name -> (vertex indices int, weights float).
        exp_deltas: callable k -> (V, 3) SMPL-X-axes displacement of
            expression ``k`` at coefficient 1.
        num_exp: number of ``Exp###`` keys to create.
    Returns:
        The mesh object, parented to the armature with an Armature modifier.
    """
    verts_b = sk.smplx_to_blender(np.asarray(vertices, np.float64)).astype(np.float32)
    faces = np.asarray(faces, np.int32)
    me = bpy.data.meshes.new(name)
    me.vertices.add(len(verts_b))
    me.vertices.foreach_set("co", verts_b.ravel())
    me.loops.add(faces.size)
    me.loops.foreach_set("vertex_index", faces.ravel())
    me.polygons.add(len(faces))
    me.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    me.update(calc_edges=True)
    me.validate()
    ob = bpy.data.objects.new(name, me)
    (collection or bpy.context.scene.collection).objects.link(ob)
    ob.parent = armature
    mod = ob.modifiers.new("Armature", "ARMATURE")
    mod.object = armature
    for bone, (idx, w) in joint_weights.items():
        vg = ob.vertex_groups.new(name=bone)
        for weight in np.unique(w):
            sel = idx[w == weight]
            vg.add(sel.tolist(), float(weight), "REPLACE")
    ob.shape_key_add(name="Basis", from_mix=False)
    for k in range(num_exp):
        key = ob.shape_key_add(name=exp_key_name(k), from_mix=False)
        key.slider_min, key.slider_max = EXP_SLIDER_RANGE
        d = sk.smplx_to_blender(np.asarray(exp_deltas(k), np.float64)).astype(np.float32)
        key.data.foreach_set("co", (verts_b + d).ravel())
    return ob


def _wooden_exp_placeholder(head_vertices: np.ndarray, num_vertices: int):
    """Placeholder expression deltas for the faceless mannequin.

    The mannequin has no face geometry, but FBX exporters drop shape keys
    whose vertices do not move, which would lose the expression channels.
    Each key therefore moves one head vertex by 1 mm along +Z (SMPL-X
    forward), so the channel exports and can be re-targeted.
    """
    def deltas(k: int) -> np.ndarray:
        d = np.zeros((num_vertices, 3))
        d[head_vertices[k % len(head_vertices)], 2] = 0.001
        return d
    return deltas


def build_default_rig(name: str = "CoSpeech_SMPLX", collection=None):
    """The licence-free default rig: SMPL-X skeleton + mannequin-x ``wooden`` mesh.

    Rest joints: :func:`model.skeleton.rest_joints` (mannequin-x calibration,
    jaw/eyes placed relative to the head).  The wooden mesh (Apache-2.0) is
    moved onto that skeleton by its own skin weights (each vertex follows
    the weighted offset between the mesh's source joints and the rest
    joints) and skinned with those weights; mannequin-x ``L_Hand``/``R_Hand``
    weights go to the wrists.  100 ``Exp###`` keys carry placeholder deltas
    (see :func:`_wooden_exp_placeholder`).

    When the ICT-FaceKit asset is built (:mod:`addon.face_head`), the
    mannequin's ``head`` part (head and neck polygons) are
    left out and the ICT head with its 53 ARKit-style keys takes their
    place, as a second mesh ``<name>_head`` (``arm["cospeech_face_mesh"]``).

    Returns:
        (armature object, body mesh object).
    Raises:
        FileNotFoundError: mannequin-x is not installed.
    """
    rest = sk.rest_joints() + STANDING_SHIFT
    arm = build_armature(name, rest, collection)
    arm[TRANS_ORIGIN] = STANDING_SHIFT.tolist()
    with np.load(sk.mannequin_asset_path("wooden.npz")) as w:
        verts = np.asarray(w["vertices"], np.float64)
        faces = np.asarray(w["faces"])
        sj = np.asarray(w["skin_joint_indices"], np.int64)
        sw = np.asarray(w["skin_weights"], np.float64)
        src_joints = np.asarray(w["skin_source_joint_positions"], np.float64)
        w_parts = {"names": [str(n) for n in w["skin_part_names"]],
                   "face_starts": np.asarray(w["skin_part_face_starts"]),
                   "face_counts": np.asarray(w["skin_part_face_counts"])}
    to_smplx = np.array([sk.mannequin_to_smplx_index(i) for i in range(len(src_joints))])
    shift = rest[to_smplx] - src_joints                      # (54, 3)
    wsum = sw.sum(1, keepdims=True)
    verts = verts + np.einsum("vk,vkc->vc", sw / np.maximum(wsum, 1e-12), shift[sj])
    joint_weights: dict[str, list] = {}
    smplx_idx = to_smplx[sj]                                  # (V, 8)
    for j in np.unique(smplx_idx[sw > 0]):
        wj = np.where(smplx_idx == j, sw, 0.0).sum(1)
        v = np.nonzero(wj > 1e-6)[0]
        joint_weights[sk.JOINT_NAMES[j]] = (v, np.round(wj[v], 4))
    head_w = np.where(smplx_idx == sk.HEAD, sw, 0.0).sum(1)
    head_vertices = np.nonzero(head_w > 0.99)[0]
    with_face = face_head.available()
    if with_face:
        part = list(w_parts["names"]).index("head")
        start, count = w_parts["face_starts"][part], w_parts["face_counts"][part]
        faces = np.delete(faces, np.arange(start, start + count), axis=0)
    mesh = build_skinned_mesh(name + "_mesh", arm, verts, faces, joint_weights,
                              _wooden_exp_placeholder(head_vertices, len(verts)), 100, collection)
    arm["cospeech_rig"] = "default"
    if with_face:
        head = face_head.build_head(name + "_head", arm, rest, collection)
        arm["cospeech_face_mesh"] = head.name
    return arm, mesh


SMPLX_NPZ_KEYS = {"v_template": "(V, 3)", "f": "(F, 3)", "J_regressor": "(55+, V)",
                  "weights": "(V, 55+)", "shapedirs": "(V, 3, 300 + E)"}


def load_smplx_model_file(path: str) -> dict:
    """Read the arrays a rig needs from a licensed ``SMPLX_*.npz`` model file.

    Read with numpy (the official file is a plain npz; the ``smplx`` package
    would pull PyTorch into Blender's Python just to read five arrays).
    Expression directions are ``shapedirs[:, :, 300:]`` (SMPL-X: 300 shape
    + expression components; Pavlakos et al., CVPR 2019 / smplx ``SMPLX``).

    Returns:
        dict with ``vertices`` (V,3), ``faces`` (F,3), ``joints`` (55,3) =
        ``J_regressor @ v_template``, ``weights`` (V,55), ``expr_dirs`` (V,3,E).
    Raises:
        FileNotFoundError, RigError: missing file / key / wrong shape (named).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SMPL-X model file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise RigError(f"{path}: not a readable SMPL-X .npz ({exc})") from exc
    with data:
        for key, shape in SMPLX_NPZ_KEYS.items():
            if key not in data.files:
                raise RigError(f"{path}: key '{key}' missing; expected {shape}")
        v = np.asarray(data["v_template"], np.float64)
        f = np.asarray(data["f"], np.int64)
        J = np.asarray(data["J_regressor"], np.float64)
        W = np.asarray(data["weights"], np.float64)
        S = np.asarray(data["shapedirs"], np.float64)
    V = v.shape[0] if v.ndim == 2 else -1
    checks = [("v_template", v.ndim == 2 and v.shape[1] == 3, "(V, 3)", v.shape),
              ("f", f.ndim == 2 and f.shape[1] == 3, "(F, 3)", f.shape),
              ("J_regressor", J.ndim == 2 and J.shape[0] >= 55 and J.shape[1] == V, f"(55, {V})", J.shape),
              ("weights", W.ndim == 2 and W.shape[0] == V and W.shape[1] >= 55, f"({V}, 55)", W.shape),
              ("shapedirs", S.ndim == 3 and S.shape[:2] == (V, 3), f"({V}, 3, 300 + E)", S.shape)]
    for key, ok, want, got in checks:
        if not ok:
            raise RigError(f"{path}: '{key}' has shape {got}; expected {want}")
    return {"vertices": v, "faces": f, "joints": J[:55] @ v, "weights": W[:, :55],
            "expr_dirs": S[:, :, 300:]}


def build_smplx_model_rig(path: str, name: str = "SMPLX", collection=None):
    """Rig from the user's own SMPL-X model file (mesh, LBS vertex groups,
    regressed rest joints, ``Exp###`` keys from the expression directions).

    Returns:
        (armature object, mesh object).
    Raises:
        FileNotFoundError, RigError: see :func:`load_smplx_model_file`.
    """
    m = load_smplx_model_file(path)
    up = STANDING_SHIFT
    m = dict(m, joints=m["joints"] + up, vertices=m["vertices"] + up)
    arm = build_armature(name, m["joints"], collection)
    arm[TRANS_ORIGIN] = up.tolist()
    W = m["weights"]
    joint_weights = {}
    for j in range(55):
        v = np.nonzero(W[:, j] > 1e-6)[0]
        if len(v):
            joint_weights[sk.JOINT_NAMES[j]] = (v, np.round(W[v, j], 4))
    E = min(100, m["expr_dirs"].shape[2])
    mesh = build_skinned_mesh(name + "_mesh", arm, m["vertices"], m["faces"], joint_weights,
                              lambda k: m["expr_dirs"][:, :, k], E, collection)
    arm["cospeech_rig"] = "smplx_model"
    return arm, mesh
