"""What an export writes instead of the scene's rig, when the file needs
something the rig is not: lengths in another unit (Unreal's centimetres, with
every node at scale 1) and only the deform skeleton of a control rig
(Rigify's DEF bones).  Temporary copies take the originals' names for the
export (the originals are renamed for the moment) and are removed after;
the originals hold still meanwhile and get everything back."""
from __future__ import annotations

import bpy
import numpy as np

_TMP_SUFFIX = " (cospeech export)"


def _scaled_copies(scene, arm, meshes, action, scale: float) -> dict:
    """Copies of the armature and its meshes with lengths x ``scale`` for the file.

    The copies take the originals' names (the originals are renamed for the
    moment; :func:`_remove_copies` gives the names back), so the file reads
    exactly as an unscaled export would: bones and meshes ``Armature.transform``
    / ``Mesh.transform(shape_keys=True)`` (its default, False, scaled the mesh
    but left every morph target at the old size: wrong morphs in the engine,
    and a 6x larger, slower file), object translations scaled
    (``S · M · S⁻¹``), and a copy of the take with every pose-bone
    ``location`` key (root motion) x ``scale``.  The shape-key actions playing
    on the originals play on the copies.
    """
    from mathutils import Matrix
    from . import compat
    S = Matrix.Scale(scale, 4)
    Si = Matrix.Scale(1.0 / scale, 4)
    out = {"renamed": [], "objects": [], "data": [], "actions": []}
    coll = bpy.data.collections.new("CoSpeech export" + _TMP_SUFFIX)
    scene.collection.children.link(coll)
    out["collection"] = coll
    originals = [arm] + [m for m in meshes if m.data is not None]
    names = {ob: ob.name for ob in originals}
    worlds = {ob: ob.matrix_world.copy() for ob in originals}
    for ob in originals:
        ob.name = names[ob] + _TMP_SUFFIX
        out["renamed"].append((ob, names[ob]))
    arm_copy = arm.copy()
    arm_copy.data = arm.data.copy()
    arm_copy.name = names[arm]
    out["data"].append(arm_copy.data)
    coll.objects.link(arm_copy)
    arm_copy.data.transform(S)
    arm_copy.matrix_world = S @ worlds[arm] @ Si
    act = action.copy()
    out["actions"].append(act)
    for fc in compat.action_fcurves(act):
        if fc.data_path.startswith("pose.bones[") and fc.data_path.endswith(".location"):
            co = _read_co(fc)
            co[1::2] *= scale
            (fc.keyframe_points if len(fc.keyframe_points) else fc.sampled_points).foreach_set("co", co)
            fc.update()
    compat.assign_action(arm_copy, act)
    copies = [arm_copy]
    for m in originals[1:]:
        mc = m.copy()
        mc.data = m.data.copy()
        mc.name = names[m]
        out["data"].append(mc.data)
        coll.objects.link(mc)
        if m.parent == arm:
            mc.parent = arm_copy
        for mod in mc.modifiers:
            if mod.type == "ARMATURE" and mod.object == arm:
                mod.object = arm_copy
        mc.data.transform(S, shape_keys=True)     # the default leaves the shape keys at the old size
        mc.matrix_world = S @ worlds[m] @ Si
        src_key, key = m.data.shape_keys, mc.data.shape_keys
        if key is not None:     # freed with its mesh
            if src_key.animation_data is not None and src_key.animation_data.action is not None:
                compat.assign_action(key, src_key.animation_data.action)
        copies.append(mc)
    out["armature"], out["objects"] = arm_copy, copies
    # the originals hold still meanwhile (restore_state gives their actions back), so the
    # exporter's per-frame scene evaluation animates one rig, not two
    for ob in originals:
        for id_data in (ob, getattr(ob.data, "shape_keys", None)):
            if id_data is not None and id_data.animation_data is not None:
                id_data.animation_data.action = None
    bpy.context.view_layer.update()
    return out


def _read_co(fc):
    pts = fc.keyframe_points if len(fc.keyframe_points) else fc.sampled_points
    co = np.zeros(2 * len(pts), np.float32)
    pts.foreach_get("co", co)
    return co


def remove_copies(copies: dict) -> None:
    """Remove what :func:`export_copies` made and give the originals their names back."""
    for ob in copies["objects"] + copies.get("extra", []):
        bpy.data.objects.remove(ob)
    for d in copies["data"]:
        if isinstance(d, bpy.types.Armature):
            bpy.data.armatures.remove(d)
        elif isinstance(d, bpy.types.Mesh):
            bpy.data.meshes.remove(d)
    for act in copies["actions"]:
        bpy.data.actions.remove(act)
    bpy.data.collections.remove(copies["collection"])
    for ob, name in copies["renamed"]:
        ob.name = name




def export_copies(scene, arm, meshes, action, scale: float = 1.0, deform: bool = False) -> dict:
    """Copies of ``arm`` and ``meshes`` for the file (see module doc): lengths
    x ``scale`` (:func:`_scaled_copies`), and with ``deform`` an armature of
    the deform bones only that follows the copy (:func:`_deform_armature`).
    Returns a dict for :func:`remove_copies`; ``armature`` / ``objects`` are what to export."""
    out = _scaled_copies(scene, arm, meshes, action, scale)
    if deform:
        _deform_armature(out)
    return out


def _deform_armature(out: dict) -> None:
    """Replace the exported armature by one of its deform bones only.

    Each deform bone keeps its rest and is re-parented to its nearest deform
    ancestor (Rigify hangs DEF chains under ORG/MCH bones); a Copy Transforms
    constraint (world space) makes it move exactly as the same bone of the full
    copy, which the take and the control rig's constraints drive; the meshes
    are skinned to it (their vertex groups name deform bones).
    """
    full = out["armature"]
    d = full.copy()
    d.data = full.data.copy()
    if d.animation_data is not None:
        d.animation_data_clear()
    out["data"].append(d.data)
    out["collection"].objects.link(d)
    name = full.name
    full.name = name + _TMP_SUFFIX
    d.name = name
    view_layer = bpy.context.view_layer
    prev = view_layer.objects.active
    view_layer.objects.active = d
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = d.data.edit_bones
        keep = {b.name for b in bones if b.use_deform}
        for b in bones:
            if b.name not in keep:
                continue
            p = b.parent
            while p is not None and p.name not in keep:
                p = p.parent
            if p is not b.parent:
                b.use_connect = False
                b.parent = p
        for b in [b for b in bones if b.name not in keep]:
            bones.remove(b)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = prev
    for pb in d.pose.bones:
        for c in list(pb.constraints):
            pb.constraints.remove(c)
        pb.matrix_basis.identity()
        c = pb.constraints.new("COPY_TRANSFORMS")
        c.target, c.subtarget = full, pb.name
    # an (empty) action of its own: the exporters bake only armatures that have one
    from . import compat
    act, slot, _bag = compat.new_action(name + _TMP_SUFFIX, "OBJECT", d.name)
    compat.assign_action(d, act, slot)
    out["actions"].append(act)
    for ob in out["objects"][1:]:
        if ob.parent == full:
            mw = ob.matrix_world.copy()
            ob.parent = d
            ob.matrix_world = mw
        for mod in ob.modifiers:
            if mod.type == "ARMATURE" and mod.object == full:
                mod.object = d
    out["objects"] = [d] + out["objects"][1:]
    out["armature"] = d
    out["extra"] = out.get("extra", []) + [full]
    bpy.context.view_layer.update()
