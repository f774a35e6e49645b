"""The ICT-FaceKit head on the default rig: a visible face with ARKit-style keys.

The asset ``addon/assets/ict_head.npz`` is built from ``../shared/data`` by
``tools/build_face_assets.py`` (ICT-FaceKit, USC ICT Vision and Graphics
Lab, MIT licence: ``addon/assets/ICT-FaceKit-LICENSE.txt``); its format is
in that script's docstring.

Placement: ICT's frame is SMPL-X's (Y up, +Z forward, +X the subject's
left), in centimetres.  The head is scaled uniformly so that its eyeball
centres (mean of each sclera's vertices) are as far apart as the rig's
``left_eye_smplhf`` / ``right_eye_smplhf`` joints, and moved so that the
eyes' midpoint lands on the joints' midpoint — the eyeballs then turn
about the eye joints.  Skinning: sclera and iris follow their eye bone;
everything else follows ``head``, blended into ``neck`` below the head
(linear in height between the neck joint + 3 cm and the head joint − 3 cm).
ICT's neck ends in a flared flap (to x ±13 cm, 11 cm behind the neck
joint) that stood off the mannequin's torso from the side and back; the
skin below the neck joint + :data:`TUCK_ABOVE` is pulled toward the neck
joint's vertical axis, up to :data:`TUCK` of its distance at the lowest
ring, so the flap ends inside the torso (looked at in Workbench renders
from the front, side, back and three-quarter back).
The jaw moves through the ``jawOpen`` key (ICT's teeth and tongue are in
it), not through the ``jaw`` bone.

Shape keys keep ICT's spelling (``eyeBlink_L``, ``browInnerUp_R`` …);
:func:`model.arkit.canonical` maps them to ARKit names.
"""
from __future__ import annotations

import os

import bpy
import numpy as np

from ..model import skeleton as sk

ASSET = os.path.join(os.path.dirname(__file__), "assets", "ict_head.npz")
#: Base colours (linear RGBA) of the head's material groups.
COLOURS = {
    "M_Face": (0.80, 0.55, 0.45, 1.0), "M_BackHead": (0.80, 0.55, 0.45, 1.0),
    "M_GumsTongue": (0.60, 0.20, 0.20, 1.0), "M_Teeth": (0.90, 0.88, 0.80, 1.0),
    "M_ScleraLeft": (0.90, 0.90, 0.88, 1.0), "M_ScleraRight": (0.90, 0.90, 0.88, 1.0),
    "M_IrisLeft": (0.15, 0.25, 0.35, 1.0), "M_IrisRight": (0.15, 0.25, 0.35, 1.0),
    # ICT's lashes are cards meant for an alpha texture: opaque they read as dark goggles
    # round the eyes (looked at in Workbench renders), at 25 % they read as lashes
    "M_EyeLashes": (0.05, 0.04, 0.03, 0.25), "M_Pupil": (0.01, 0.01, 0.01, 1.0),
}
#: ICT's iris is a texture on a sphere inside the sclera; with no textures
#: shipped, sclera polygons within these angles (degrees) of the eye's
#: forward axis (+Z) get the iris / pupil colour (human iris ~12 mm wide,
#: pupil ~4 mm, on a ~24 mm eyeball: asin(6/12) = 30°, asin(2/12) ≈ 10°).
IRIS_DEG, PUPIL_DEG = 30.0, 10.0
#: Neck tuck: start height above the neck joint (m) and the pull at the lowest ring (fraction).
TUCK_ABOVE, TUCK = 0.05, 0.4
EYE_GROUPS = {"left_eye_smplhf": ("M_ScleraLeft", "M_IrisLeft"),
              "right_eye_smplhf": ("M_ScleraRight", "M_IrisRight")}


def available() -> bool:
    """Whether the head asset was built (``tools/build_face_assets.py``)."""
    return os.path.exists(ASSET)


def _vertex_materials(a) -> np.ndarray:
    """(V,) material index of each vertex (the last polygon touching it wins)."""
    counts = a["face_vertex_counts"].astype(np.int64)
    vm = np.zeros(len(a["vertices"]), np.int64)
    vm[a["face_vertex_indices"].astype(np.int64)] = np.repeat(a["face_material"].astype(np.int64), counts)
    return vm


def placement(a, rest: np.ndarray) -> tuple[float, np.ndarray]:
    """Scale (asset cm -> metres) and offset (metres, SMPL-X axes) putting the
    head's eyeballs on the rig's eye joints; ``rest``: (55, 3) rest joints."""
    names = [str(m) for m in a["material_names"]]
    vm = _vertex_materials(a)
    v = a["vertices"].astype(np.float64)
    centres = [v[np.isin(vm, [names.index(n) for n in EYE_GROUPS[j][:1]])].mean(0)
               for j in ("left_eye_smplhf", "right_eye_smplhf")]
    eyes = rest[[sk.JOINT_INDEX["left_eye_smplhf"], sk.JOINT_INDEX["right_eye_smplhf"]]]
    scale = float(np.linalg.norm(eyes[0] - eyes[1]) / np.linalg.norm(centres[0] - centres[1]))
    offset = eyes.mean(0) - scale * (centres[0] + centres[1]) / 2
    return scale, offset


def build_head(name: str, armature, rest: np.ndarray, collection=None):
    """Add the ICT head mesh, skinned to ``armature`` (an SMPL-X armature
    built by :func:`addon.rig_build.build_armature` from ``rest``).

    Args:
        name: mesh object / data name.
        rest: (55, 3) rest joints, metres, SMPL-X axes.
    Returns:
        The mesh object (parented to the armature, Armature modifier,
        ``Basis`` + 53 ICT expression keys, one material per part).
    Raises:
        FileNotFoundError: the asset was not built.
    """
    if not available():
        raise FileNotFoundError(f"{ASSET} is missing: run tools/build_face_assets.py")
    with np.load(ASSET) as f:
        a = {k: f[k] for k in f.files}
    scale, offset = placement(a, rest)
    v = _tuck_neck(a, a["vertices"].astype(np.float64) * scale + offset, rest)   # metres, SMPL-X axes
    verts_b = sk.smplx_to_blender(v).astype(np.float32)
    counts = a["face_vertex_counts"].astype(np.int32)
    corners = a["face_vertex_indices"].astype(np.int32)
    me = bpy.data.meshes.new(name)
    me.vertices.add(len(verts_b))
    me.vertices.foreach_set("co", verts_b.ravel())
    me.loops.add(len(corners))
    me.loops.foreach_set("vertex_index", corners)
    me.polygons.add(len(counts))
    me.polygons.foreach_set("loop_start", np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32))
    me.update(calc_edges=True)
    uv = me.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", a["face_uv"].astype(np.float32).ravel())
    mat_names = [str(m) for m in a["material_names"]] + ["M_Pupil"]
    for m in mat_names:
        mat = bpy.data.materials.get(f"CoSpeech_{m}") or bpy.data.materials.new(f"CoSpeech_{m}")
        mat.diffuse_color = COLOURS.get(m, (0.8, 0.8, 0.8, 1.0))
        if mat.diffuse_color[3] < 1.0:      # see-through in EEVEE too (4.2+: render method; older: blend mode)
            if hasattr(mat, "surface_render_method"):
                mat.surface_render_method = "BLENDED"
            elif hasattr(mat, "blend_method"):
                mat.blend_method = "BLEND"
        me.materials.append(mat)
    me.polygons.foreach_set("material_index", _painted_eyes(a, mat_names).astype(np.int32))
    me.polygons.foreach_set("use_smooth", np.ones(len(counts), bool))
    me.validate()
    ob = bpy.data.objects.new(name, me)
    (collection or bpy.context.scene.collection).objects.link(ob)
    ob.parent = armature
    ob.modifiers.new("Armature", "ARMATURE").object = armature
    _skin(ob, a, v, rest, mat_names)
    ob.shape_key_add(name="Basis", from_mix=False)
    st = a["delta_starts"]
    for e, ename in enumerate(a["expression_names"]):
        idx = a["delta_indices"][st[e]:st[e + 1]].astype(np.int64)
        d = np.zeros_like(v)
        d[idx] = a["delta_values"][st[e]:st[e + 1]].astype(np.float64) * scale
        key = ob.shape_key_add(name=str(ename), from_mix=False)
        key.data.foreach_set("co", (verts_b + sk.smplx_to_blender(d).astype(np.float32)).ravel())
    ob["cospeech_face"] = "ICT-FaceKit (MIT)"
    return ob


def _tuck_neck(a, v: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """``v`` (N, 3) metres with the neck's flap pulled in (module doc)."""
    names = [str(m) for m in a["material_names"]]
    skin = np.isin(_vertex_materials(a), [names.index("M_Face"), names.index("M_BackHead")])
    neck = rest[sk.JOINT_INDEX["neck"]]
    top = neck[1] + TUCK_ABOVE
    low = float(v[skin, 1].min())
    f = TUCK * np.clip((top - v[:, 1]) / max(top - low, 1e-6), 0.0, 1.0) * skin
    out = v.copy()
    for c in (0, 2):
        out[:, c] = v[:, c] + (neck[c] - v[:, c]) * f
    return out


def _painted_eyes(a, mat_names: list[str]) -> np.ndarray:
    """Polygon material indices with the iris and pupil painted on the sclera."""
    mat = a["face_material"].astype(np.int64).copy()
    counts = a["face_vertex_counts"].astype(np.int64)
    v = a["vertices"].astype(np.float64)
    centre = np.add.reduceat(v[a["face_vertex_indices"].astype(np.int64)], np.concatenate([[0], np.cumsum(counts)[:-1]]))
    centre /= counts[:, None]
    vm = _vertex_materials(a)
    for sclera, iris in (("M_ScleraLeft", "M_IrisLeft"), ("M_ScleraRight", "M_IrisRight")):
        polys = mat == mat_names.index(sclera)
        eye = v[vm == mat_names.index(sclera)].mean(0)
        d = centre - eye
        angle = np.degrees(np.arccos(np.clip(d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-9), -1, 1)))
        mat[polys & (angle < IRIS_DEG)] = mat_names.index(iris)
        mat[polys & (angle < PUPIL_DEG)] = mat_names.index("M_Pupil")
    return mat


def _skin(ob, a, v: np.ndarray, rest: np.ndarray, mat_names: list[str]) -> None:
    vm = _vertex_materials(a)
    eye_vertices = np.zeros(len(v), bool)
    for bone, groups in EYE_GROUPS.items():
        sel = np.nonzero(np.isin(vm, [mat_names.index(g) for g in groups]))[0]
        eye_vertices[sel] = True
        ob.vertex_groups.new(name=bone).add(sel.tolist(), 1.0, "REPLACE")
    lo = rest[sk.JOINT_INDEX["neck"], 1] + 0.03
    hi = rest[sk.HEAD, 1] - 0.03
    t = np.round(np.clip((v[:, 1] - lo) / max(hi - lo, 1e-6), 0.0, 1.0), 2)
    for bone, w in (("head", t), ("neck", 1.0 - t)):
        vg = ob.vertex_groups.new(name=bone)
        for value in np.unique(w[~eye_vertices]):
            if value > 0:
                vg.add(np.nonzero((w == value) & ~eye_vertices)[0].tolist(), float(value), "REPLACE")
