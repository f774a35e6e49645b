"""Rigs motion is baked onto: build the default rig, build a user's SMPL-X
model, and recognise existing SMPL-X / FLAME rigs.

Conventions (the official SMPL-X Blender add-on's; see DESIGN.md): bones are
named as the SMPL-X joints plus a ``root`` bone parenting ``pelvis``; each
bone's head sits on its joint, its tail points straight up (+Z in armature
space) with roll 0, so every bone's local axes equal SMPL-X axes and a
joint's axis-angle ``r`` is the bone's ``rotation_quaternion`` directly.
SMPL-X positions (x, y, z) map to Blender (x, -z, y).  Expression
coefficients are shape keys ``Exp000`` … ``Exp099`` on the mesh.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..model import skeleton as sk
from . import face_head
from .errors import RigError  # noqa: F401  (re-exported: rig.RigError)

ROOT_BONE = "root"
EXP_PREFIX = "Exp"
FLAME_BONES = ("neck", "jaw", "left_eye", "right_eye")
#: FLAME head rig bone -> SMPL-X joints whose rotations are composed (parent
#: first) to drive it.  FLAME's ``neck`` turns the whole head relative to the
#: torso, which in SMPL-X is split over ``neck`` and ``head``.
FLAME_BONE_SOURCES = {
    "neck": (sk.JOINT_INDEX["neck"], sk.JOINT_INDEX["head"]),
    "jaw": (sk.JOINT_INDEX["jaw"],),
    "left_eye": (sk.JOINT_INDEX["left_eye_smplhf"],),
    "right_eye": (sk.JOINT_INDEX["right_eye_smplhf"],),
}
#: Shape-key value range set on ``Exp###`` keys: FLAME coefficients exceed
#: Blender's default slider range [0, 1] (BEAT2 has values beyond ±2) and
#: Blender clamps animated values to [slider_min, slider_max].
EXP_SLIDER_RANGE = (-10.0, 10.0)


#: SMPL-X rigs we build stand on the floor at rest: their rest joints are
#: lifted by the standing ``trans`` (SMPL-X axes, metres), recorded on the
#: armature as ``cospeech_trans_origin``; the pelvis is keyed with
#: ``trans - origin``, so world joints stay ``rest + trans`` (the SMPL-X
#: forward kinematics) while a rig that is not animated stands where a take
#: stands.  Rigs without the property (the official add-on's, older files)
#: are keyed with ``trans`` itself.
STANDING_SHIFT = np.array([0.0, sk.STANDING_TRANS_Y, 0.0])
TRANS_ORIGIN = "cospeech_trans_origin"


@dataclass
class RigInfo:
    """What a bake needs to know about a rig.

    Attributes:
        armature: the armature object.
        kind: ``"smplx"``, ``"flame"`` or ``"retarget"`` (another skeleton:
            Rigify, Mixamo, UE5, VRM or a custom bone map; see
            :mod:`addon.retarget`).
        bone_sources: bone name -> SMPL-X joint indices whose local rotations
            are composed (in order) to give the bone's rotation.
        location_bone: bone keyed with ``trans`` (``pelvis``) or None.
        expression_meshes: mesh objects carrying ``Exp###`` shape keys, with
            the number of consecutive keys from ``Exp000`` each has.
        mapping: retarget rigs: ``{bone: (joint_a, joint_b, t)}`` (:mod:`addon.bone_maps`).
        convention: retarget rigs: the detected convention or "CUSTOM".
        trans_origin: (3,) SMPL-X ``trans`` at which the pelvis bone's
            ``location`` is 0 (:data:`STANDING_SHIFT` on rigs we build).
    """

    armature: object
    kind: str
    bone_sources: dict[str, tuple[int, ...]]
    location_bone: str | None
    expression_meshes: list[tuple[object, int]] = field(default_factory=list)
    mapping: dict | None = None
    convention: str = ""
    trans_origin: tuple = (0.0, 0.0, 0.0)
    _retarget: object = None

    def retarget(self):
        """The prepared :class:`addon.retarget.Retarget` (made on first use: it
        probes the rig).  Raises ``retarget.RetargetError`` (a RigError)."""
        if self._retarget is None:
            from . import retarget
            mode = getattr(self.armature, "cospeech_root_motion", "KEEP")
            self._retarget = retarget.prepare(self.armature, self.mapping, self.convention, mode)
        return self._retarget


def exp_key_name(k: int) -> str:
    """Shape-key name of FLAME expression ``k`` (``Exp000`` …)."""
    return f"{EXP_PREFIX}{k:03d}"


# ----------------------------------------------------------------- detection
def bound_meshes(armature) -> list:
    """Meshes deformed by ``armature`` (parented to it or with an Armature modifier on it)."""
    return [ob for ob in bpy.data.objects if ob.type == "MESH" and (
        ob.parent == armature or any(m.type == "ARMATURE" and m.object == armature for m in ob.modifiers))]


def _expression_meshes(armature) -> list[tuple[object, int]]:
    out = []
    for ob in bound_meshes(armature):
        if ob.data.shape_keys is None:
            continue
        blocks = ob.data.shape_keys.key_blocks
        n = 0
        while exp_key_name(n) in blocks:
            n += 1
        if n:
            out.append((ob, n))
    return out


def user_bone_map(obj) -> dict:
    """The armature's own bone map (``Object.cospeech_bone_map``, edited in the
    panel) as ``{bone: (joint_a, joint_b, t)}``; rows with an empty source
    are skipped (bone left alone).

    Raises:
        RigError: a bone listed twice, a bone the armature lacks, or a source
            that is not an SMPL-X joint.
    """
    from . import bone_maps
    out = {}
    for item in getattr(obj, "cospeech_bone_map", ()):
        if not item.bone or not item.source.strip():
            continue
        if item.bone in out:
            raise RigError(f"Bone map of '{obj.name}': bone '{item.bone}' is listed twice; "
                           "remove one row.")
        if item.bone not in obj.data.bones:
            raise RigError(f"Bone map of '{obj.name}': '{obj.name}' has no bone '{item.bone}'.")
        try:
            out[item.bone] = bone_maps.parse_source(item.source)
        except ValueError as exc:
            raise RigError(f"Bone map of '{obj.name}', bone '{item.bone}': {exc}.") from exc
    return out


def detect_rig(obj) -> RigInfo:
    """Recognise an SMPL-X rig (ours or the official add-on's), a FLAME head
    rig, or another skeleton to retarget onto (its own bone map, else
    Rigify / Mixamo / UE5 / VRM bone names).

    Raises:
        RigError: ``obj`` is not an armature, or none of these; the message
            lists what is missing.
    """
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        what = "nothing" if obj is None else f"'{obj.name}' ({obj.type.lower()})"
        raise RigError(f"Select an SMPL-X or FLAME armature: the active object is {what}.")
    bones = obj.data.bones
    missing_smplx = [n for n in sk.JOINT_NAMES if n not in bones]
    if not missing_smplx:
        origin = tuple(float(x) for x in obj.get(TRANS_ORIGIN, (0.0, 0.0, 0.0)))
        return RigInfo(obj, "smplx", {n: (i,) for i, n in enumerate(sk.JOINT_NAMES)},
                       "pelvis", _expression_meshes(obj), trans_origin=origin)
    missing_flame = [n for n in FLAME_BONES if n not in bones]
    if not missing_flame:
        return RigInfo(obj, "flame", dict(FLAME_BONE_SOURCES), None, _expression_meshes(obj))
    from . import bone_maps
    conv, mapping = bone_maps.detect(b.name for b in bones)
    user = user_bone_map(obj)
    if user and user != mapping:
        conv, mapping = "CUSTOM", user
    if mapping:
        missing = bone_maps.missing_required(mapping)
        if missing:
            what = (f"The bone map of '{obj.name}'" if conv == "CUSTOM" else
                    f"Armature '{obj.name}' looks like a {bone_maps.LABELS[conv]} rig, but it")
            raise RigError(f"{what} has no bone following SMPL-X {', '.join(missing)}: "
                           "map them in the Bone Map list.")
        return RigInfo(obj, "retarget", {}, None, [], mapping=mapping, convention=conv)
    shown = ", ".join(missing_smplx[:8]) + (" …" if len(missing_smplx) > 8 else "")
    raise RigError(
        f"Armature '{obj.name}' is neither an SMPL-X rig (missing {len(missing_smplx)} of "
        f"{sk.NUM_JOINTS} SMPL-X bones: {shown}) nor a FLAME head rig (missing: "
        f"{', '.join(missing_flame)}), and has no Rigify, Mixamo, Unreal Engine 5 or VRM bone "
        "names: map its bones in the Bone Map list to retarget onto it.")


def _library_name(id_data) -> str:
    lib = id_data.library or (id_data.override_library.reference.library
                              if id_data.override_library and id_data.override_library.reference else None)
    return lib.filepath if lib is not None else "a library"


def check_bakeable(info: RigInfo, parts) -> None:
    """Refuse rigs whose data a bake could not keep.

    Linked data (``ID.library``) and system library overrides are not
    editable (``ID.is_editable`` is False): keys written there are lost on
    save.  An editable library override takes the body; its face shape keys
    are checked separately, since they usually stay linked.  An armature in
    Edit Mode has bone edits Blender has not applied yet.

    Raises:
        RigError: the message says what to do (make local / override,
            switch off Face, leave Edit Mode, apply a non-uniform scale, map
            missing bones).
    """
    arm = info.armature
    if arm.mode == "EDIT":
        raise RigError(f"Rig '{arm.name}' is in Edit Mode: switch to Object or Pose Mode first "
                       "(Blender applies bone edits when you leave Edit Mode).")
    if not arm.is_editable:
        raise RigError(
            f"Rig '{arm.name}' is linked from {_library_name(arm)} and cannot keep new animation: "
            "make it a library override (Object ▸ Library Override ▸ Make) or local "
            "(Object ▸ Relations ▸ Make Local) first.")
    if info.kind == "retarget":
        info.retarget()   # probes the rig now: scale / bone-map errors before generating
    if "face" not in set(parts):
        return
    for mesh, _n in info.expression_meshes:
        key = mesh.data.shape_keys
        if not (mesh.is_editable and mesh.data.is_editable and key.is_editable):
            raise RigError(
                f"The face shape keys of '{mesh.name}' are linked from {_library_name(mesh.data)} and "
                "cannot keep new animation: make the mesh local (Object ▸ Relations ▸ Make Local ▸ "
                "Selected Objects and Data), or switch off Face under Animate.")


# ------------------------------------------------------------------ building
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
