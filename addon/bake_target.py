"""Bake targets: which channels of a clip become which f-curves on which ID,
with which conversion (../shared/DESIGN.md, "One bake target abstraction").

A take keys one target per ID:

| target | ID keyed | clip channels | f-curves | conversion |
|---|---|---|---|---|
| :class:`ArmatureTarget` | the armature object | joint rotations, root translation | ``pose.bones["b"].rotation_quaternion`` (``rotation_euler`` on Euler bones), ``.location`` of the location bone | SMPL-X / FLAME rigs: composed local quaternions of ``RigInfo.bone_sources``, ``trans − trans_origin``; retargeted rigs: :meth:`addon.retarget.Retarget.channels` (rest alignment, planted feet, IK/FK switches) |
| :class:`ExpressionTarget` | a mesh's shape keys | FLAME expressions | ``key_blocks["Exp###"].value`` | as they are (slider range widened to ±10) |
| :class:`FaceTarget` | a mesh's shape keys | ARKit mouth, eyes, blinks, brows; visemes | ``key_blocks["<ARKit or viseme key>"].value`` | :func:`model.arkit.arkit_weights` and the viseme NNLS; one mouth per mesh (the keys of the mouth not chosen keyed at rest) |

Every target has ``id_data`` (what its action is assigned to), ``channels(clip,
seed, blink_rate)`` (yields ``((data_path, index), group, (T,) values)`` for a
clip at the scene rate) and ``action_of(take)`` (its action of a take, or
None).  Bake (:func:`addon.bake.bake_clip`), take switching
(:func:`addon.bake.activate_take`, hence FBX / glTF export), Regenerate Range
(:mod:`addon.take_keys`), Adjust Take (:mod:`addon.take_adjust`) and the ARKit
face bake (:mod:`addon.arkit_bake`) all go through :func:`targets_of`.
"""
from __future__ import annotations

import os

import numpy as np
from scipy.spatial.transform import Rotation

from ..model import skeleton as sk
from ..model.arkit import (BLINKS_PER_MINUTE, MOUTH_NAMES, VISEME_NAMES, VISEME_TABLE, ARKIT_NAMES, arkit_weights,
                           canonical, canonical_viseme, viseme_weights)
from ..model.motion import MotionClip
from .rig import RigInfo, bound_meshes, exp_key_name

#: Body parts a bake may include; joints per part (SMPL-X indices).
PARTS = sk.BAKE_PARTS
ALL_PARTS = frozenset(PARTS)
#: The character's mouth choice (``Object.cospeech_mouth`` on the armature).
MOUTH_MODES = ("AUTO", "ARKIT", "VISEMES", "BOTH")


def key_path(key_name: str) -> str:
    """F-curve data path of shape key ``key_name``'s value."""
    return f'key_blocks["{key_name}"].value'


# ------------------------------------------------------------------ armature
def quaternions(clip: MotionClip, joints: tuple[int, ...]) -> np.ndarray:
    """(T, 4) w-first quaternions of the composed local rotations of ``joints``,
    sign-continuous over time (q and -q are the same rotation; flipping keeps
    Blender's per-channel interpolation between keys short)."""
    rv = clip.joint_rotvecs().astype(np.float64)
    rot = Rotation.from_rotvec(rv[:, joints[0]])
    for j in joints[1:]:
        rot = rot * Rotation.from_rotvec(rv[:, j])
    q = rot.as_quat()[:, [3, 0, 1, 2]]
    flip = np.cumsum(np.r_[False, np.einsum("ij,ij->i", q[1:], q[:-1]) < 0]) % 2 == 1
    q[flip] *= -1
    return q


class ArmatureTarget:
    """Joint rotations and the root offset on the armature's pose bones (module table)."""

    kind = "armature"

    def __init__(self, info: RigInfo, parts=ALL_PARTS):
        self.info, self.parts = info, frozenset(parts)
        self.id_data = info.armature

    def channels(self, clip: MotionClip, seed: int = 0, blink_rate: float = BLINKS_PER_MINUTE):
        """A generator, one bone at a time, so a long take never holds every
        channel at once (30 minutes x 220 quaternion channels: ~95 MB of float64).
        The group of each channel is its bone's name."""
        info = self.info
        if info.kind == "retarget":
            yield from info.retarget().channels(clip, self.parts)
            return
        origin = np.asarray(info.trans_origin, np.float64)
        joints_on = set()
        for p in self.parts:
            joints_on.update(PARTS[p])
        for bone, joints in info.bone_sources.items():
            if joints[-1] not in joints_on or info.armature.pose.bones.get(bone) is None:
                continue
            q = quaternions(clip, joints)
            for c in range(4):
                yield (f'pose.bones["{bone}"].rotation_quaternion', c), bone, q[:, c]
            if bone == info.location_bone and "root" in self.parts:
                for c in range(3):
                    yield (f'pose.bones["{bone}"].location', c), bone, clip.trans[:, c] - origin[c]

    def action_of(self, take):
        return take


# ---------------------------------------------------------------- FLAME Exp
class ExpressionTarget:
    """FLAME expression coefficients on a mesh's ``Exp000`` … shape keys."""

    kind = "expressions"

    def __init__(self, mesh, n_exp: int):
        self.mesh, self.n_exp = mesh, int(n_exp)
        self.id_data = mesh.data.shape_keys

    def channels(self, clip: MotionClip, seed: int = 0, blink_rate: float = BLINKS_PER_MINUTE):
        for k in range(min(self.n_exp, clip.expressions.shape[1])):
            yield (key_path(exp_key_name(k)), 0), None, clip.expressions[:, k]

    def action_of(self, take):
        """The take's expression action on this mesh (the first one for files
        whose actions carry no slot name)."""
        import bpy
        names = [n for n in str(take.get("cospeech_key_action", "")).split(",") if n]
        acts = [bpy.data.actions[n] for n in names if n in bpy.data.actions]
        match = [a for a in acts if len(a.slots) and a.slots[0].name_display == self.id_data.name]
        return match[0] if match else (acts[0] if acts else None)


# ------------------------------------------------------------ ARKit / visemes
def driven_by_driver(key) -> set[str]:
    """Data paths of ``key`` (a shape Key) that a driver sets."""
    ad = key.animation_data
    return {d.data_path for d in ad.drivers} if ad is not None else set()


def all_face_keys(mesh) -> dict[str, tuple[str, str]]:
    """``{shape key name: ("arkit", ARKit name) | ("viseme", viseme name)}``:
    every key of ``mesh`` with a recognised name, drivers left out.

    Several keys may stand for one ARKit shape: when one of them is spelled
    exactly (``jawOpen``, Live Link's ``JawOpen``), the others (SRanipal's
    ``Jaw_Open``, VRoid's ``Mouth.Close``) are left out, so one shape moves
    one key; otherwise all are kept (ICT's ``browInnerUp_L`` and ``_R``)."""
    key = mesh.data.shape_keys if mesh.type == "MESH" and mesh.data is not None else None
    if key is None:
        return {}
    drivers = driven_by_driver(key)
    out: dict[str, tuple[str, str]] = {}
    for kb in key.key_blocks[1:]:          # never the basis
        if key_path(kb.name) in drivers:
            continue
        a = canonical(kb.name)
        if a is not None:
            out[kb.name] = ("arkit", a)
            continue
        v = canonical_viseme(kb.name)
        if v is not None and os.path.exists(VISEME_TABLE):
            out[kb.name] = ("viseme", v)
    exact = {n for k, (kind, n) in out.items() if kind == "arkit" and k in (n, n[0].upper() + n[1:])}
    return {k: (kind, n) for k, (kind, n) in out.items()
            if not (kind == "arkit" and n in exact and k not in (n, n[0].upper() + n[1:]))}


def mouth_choice(keys: dict, mode: str = "AUTO") -> str:
    """Which mouth a mesh with face ``keys`` (:func:`all_face_keys`) drives:
    "ARKIT", "VISEMES" or "BOTH".  AUTO: ARKit when the mesh has ``jawOpen``,
    else visemes when it has them, else ARKit.  An explicit choice the mesh
    cannot follow (VISEMES on a mesh without visemes) falls back to AUTO.

    Raises:
        ValueError: ``mode`` not in :data:`MOUTH_MODES`.
    """
    if mode not in MOUTH_MODES:
        raise ValueError(f"mouth must be one of {', '.join(MOUTH_MODES)}, not {mode!r}")
    kinds = {kind for kind, _ in keys.values()}
    has_arkit_mouth = any(kind == "arkit" and n in MOUTH_NAMES for kind, n in keys.values())
    if mode == "BOTH":
        return "BOTH"
    if mode == "VISEMES" and "viseme" in kinds:
        return "VISEMES"
    if mode == "ARKIT" and has_arkit_mouth:
        return "ARKIT"
    if "viseme" in kinds and not any(n == "jawOpen" for _, n in keys.values()):
        return "VISEMES"
    return "ARKIT"


def face_keys(mesh, mouth: str = "AUTO") -> dict[str, tuple[str, str]]:
    """The keys of ``mesh`` a bake drives (:func:`all_face_keys` minus the
    mouth not chosen, :func:`mouth_choice`); one mouth per mesh."""
    keys = all_face_keys(mesh)
    return _driven(keys, mouth_choice(keys, mouth))


def _driven(keys: dict, choice: str) -> dict:
    """``keys`` (:func:`all_face_keys`) minus the mouth ``choice`` leaves out."""
    if choice == "ARKIT":
        return {k: v for k, v in keys.items() if v[0] != "viseme"}
    if choice == "VISEMES":
        return {k: v for k, v in keys.items() if not (v[0] == "arkit" and v[1] in MOUTH_NAMES)}
    return keys


def face_values(targets: dict[str, tuple[str, str]], clip, seed: int = 0,
                blink_rate: float = BLINKS_PER_MINUTE) -> dict[str, np.ndarray]:
    """``{shape key name: (T,) float32 weights}`` for ``targets`` (:func:`face_keys`) from ``clip``."""
    w = arkit_weights(clip, seed, blink_rate)
    vis = viseme_weights(w) if any(kind == "viseme" for kind, _ in targets.values()) else None
    return {k: (w[:, ARKIT_NAMES.index(n)] if kind == "arkit" else vis[:, VISEME_NAMES.index(n)])
            for k, (kind, n) in targets.items()}


class FaceTarget:
    """ARKit and viseme shape keys of a mesh (the ICT head, a character's face)."""

    kind = "face"

    def __init__(self, mesh, mouth: str = "AUTO"):
        self.mesh = mesh
        self.id_data = mesh.data.shape_keys
        self.every = all_face_keys(mesh)
        self.mouth = mouth_choice(self.every, mouth)
        self.keys = _driven(self.every, self.mouth)
        self.rest = sorted(set(self.every) - set(self.keys))

    def channels(self, clip: MotionClip, seed: int = 0, blink_rate: float = BLINKS_PER_MINUTE):
        values = face_values(self.keys, clip, seed, blink_rate)
        values.update({k: np.zeros(clip.num_frames, np.float32) for k in self.rest})
        for k in sorted(values):
            yield (key_path(k), 0), None, values[k]

    def action_of(self, take):
        """The take's face action on this mesh (:func:`face_action_of`)."""
        return face_action_of(self.id_data, take)

    @staticmethod
    def of_take(mesh, take) -> "FaceTarget":
        """The target with the mouth the take's face action was baked with."""
        act = face_action_of(mesh.data.shape_keys, take)
        return FaceTarget(mesh, str(act.get("cospeech_mouth", "AUTO")) if act is not None else "AUTO")


def face_action_of(shape_keys, take):
    """The take's face action on ``shape_keys`` (a mesh's Key): the one playing if
    it plays one of them (*Bake ARKit Face* may have baked the take again), else
    the newest; None when the take has none there."""
    import bpy
    cands = [a for a in bpy.data.actions if a.get("cospeech_arkit_of") == take.name and len(a.slots)
             and a.slots[0].name_display == shape_keys.name]
    ad = shape_keys.animation_data
    if ad is not None and ad.action in cands:
        return ad.action
    return cands[-1] if cands else None


def face_meshes(info: RigInfo) -> list:
    """Editable meshes of the rig with ARKit- or viseme-named shape keys."""
    return [m for m in bound_meshes(info.armature) if m.is_editable and all_face_keys(m)]


def targets_of(info: RigInfo, parts=ALL_PARTS, take=None) -> list:
    """The rig's targets: the armature, each ``Exp###`` mesh and each face mesh
    (the last two only with "face" in ``parts``).  With ``take``, face targets
    use the mouth its face actions were baked with, else the armature's
    ``cospeech_mouth`` choice."""
    out: list = [ArmatureTarget(info, parts)]
    if "face" not in parts:
        return out
    out += [ExpressionTarget(mesh, n) for mesh, n in info.expression_meshes]
    mouth = getattr(info.armature, "cospeech_mouth", "AUTO")
    out += [FaceTarget.of_take(m, take) if take is not None else FaceTarget(m, mouth) for m in face_meshes(info)]
    return out
