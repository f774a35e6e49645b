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

from dataclasses import dataclass, field

import bpy
import numpy as np

from ..model import skeleton as sk
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
