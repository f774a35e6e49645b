"""Bake a :class:`MotionClip` as a new take: an armature action plus a
shape-key action, written with ``keyframe_points.add`` + ``foreach_set``.

Takes are never overwritten: every bake creates new actions (fake user set,
so they survive with no users), and the action the armature had before is
given a fake user too.  Actions carry custom properties:
``cospeech_take`` (True), ``cospeech_key_action`` (name of the shape-key
action), ``cospeech_frame_start`` / ``cospeech_frame_end``.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np
from scipy.spatial.transform import Rotation

from ..model import skeleton as sk
from ..model.motion import MotionClip
from . import compat
from .rig import EXP_SLIDER_RANGE, RigInfo, exp_key_name

#: Body parts a bake may include; joints per part (SMPL-X indices).
PARTS = {
    "root": (0,),                               # pelvis rotation + trans
    "lower": sk.LOWER_BODY,
    "body": (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21),
    "hands": sk.LEFT_HAND + sk.RIGHT_HAND,
    "face": (22, 23, 24),                       # + expression shape keys
}
ALL_PARTS = frozenset(PARTS)

_LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value


@dataclass
class Take:
    """One baked generation: armature action and (optional) shape-key actions."""

    action: object
    key_actions: list
    frame_start: int
    frame_end: int


def scene_fps(scene) -> float:
    """Scene frame rate in frames per second (``render.fps / render.fps_base``)."""
    return scene.render.fps / scene.render.fps_base


def _quaternions(clip: MotionClip, joints: tuple[int, ...]) -> np.ndarray:
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


def read_keys(fc) -> np.ndarray:
    """(n, 2) float32 ``[frame, value]`` of an f-curve's keyframes (``foreach_get``)."""
    co = np.zeros(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def write_values(fc, values: np.ndarray) -> None:
    """Replace the values of all keyframes of ``fc`` (frames unchanged), then update."""
    co = read_keys(fc)
    co[:, 1] = values
    fc.keyframe_points.foreach_set("co", co.ravel())
    fc.update()


def _write_fcurve(bag, data_path: str, index: int, frames: np.ndarray, values: np.ndarray, group=None):
    fc = bag.fcurves.new(data_path, index=index)
    if group is not None:
        fc.group = group
    n = len(frames)
    fc.keyframe_points.add(n)
    co = np.empty(2 * n, np.float32)
    co[0::2] = frames
    co[1::2] = values
    fc.keyframe_points.foreach_set("co", co)
    fc.keyframe_points.foreach_set("interpolation", np.full(n, _LINEAR, np.int32))
    fc.update()
    return fc


def bake_clip(rig: RigInfo, clip: MotionClip, frame_start: int, name: str = "CoSpeech take",
              scene=None, parts=ALL_PARTS, assign: bool = True) -> Take:
    """Bake ``clip`` onto ``rig`` as a new take starting at ``frame_start``.

    The clip is resampled to the scene frame rate (rotation slerp, see
    :meth:`MotionClip.resample`) so clip time t lands on scene frame
    ``frame_start + t * scene_fps``.  Parts not in ``parts`` get no f-curves.
    Expression coefficients beyond a mesh's ``Exp###`` count are dropped.

    Args:
        rig: from :func:`addon.rig.detect_rig`.
        clip: motion in the BEAT2 layout (any fps).
        frame_start: scene frame of the clip's first frame.
        name: action name prefix.
        scene: scene for the frame rate (default: context scene).
        parts: subset of :data:`PARTS` keys.
        assign: make the new actions active on the armature / meshes.
    Returns:
        The :class:`Take`.
    Raises:
        ValueError: unknown part names or an empty clip.
    """
    scene = scene or bpy.context.scene
    parts = frozenset(parts)
    if not parts <= ALL_PARTS:
        raise ValueError(f"unknown parts {sorted(parts - ALL_PARTS)}; choose from {sorted(ALL_PARTS)}")
    if clip.num_frames == 0:
        raise ValueError("the motion clip has no frames")
    clip = clip.resample(scene_fps(scene))
    T = clip.num_frames
    frames = (frame_start + np.arange(T)).astype(np.float32)
    joints_on = set()
    for p in parts:
        joints_on.update(PARTS[p])

    arm = rig.armature
    action, slot, bag = compat.new_action(name, "OBJECT", arm.name)
    for bone, joints in rig.bone_sources.items():
        if joints[-1] not in joints_on:
            continue
        pb = arm.pose.bones.get(bone)
        if pb is None:
            continue
        pb.rotation_mode = "QUATERNION"
        q = _quaternions(clip, joints)
        grp = bag.groups.new(bone)
        path = f'pose.bones["{bone}"].rotation_quaternion'
        for c in range(4):
            _write_fcurve(bag, path, c, frames, q[:, c], grp)
        if bone == rig.location_bone and "root" in parts:
            path = f'pose.bones["{bone}"].location'
            for c in range(3):
                _write_fcurve(bag, path, c, frames, clip.trans[:, c], grp)
    _mark_take(action, frame_start, frame_start + T - 1)
    action["cospeech_armature"] = arm.name

    key_actions = []
    if "face" in parts:
        for mesh, n_exp in rig.expression_meshes:
            key = mesh.data.shape_keys
            kact, kslot, kbag = compat.new_action(name + " (face)", "KEY", key.name)
            for k in range(min(n_exp, clip.expressions.shape[1])):
                kb = key.key_blocks[exp_key_name(k)]
                kb.slider_min = min(kb.slider_min, EXP_SLIDER_RANGE[0])
                kb.slider_max = max(kb.slider_max, EXP_SLIDER_RANGE[1])
                _write_fcurve(kbag, f'key_blocks["{kb.name}"].value', 0, frames, clip.expressions[:, k])
            _mark_take(kact, frame_start, frame_start + T - 1, face=True)
            key_actions.append(kact)
    action["cospeech_key_action"] = ",".join(a.name for a in key_actions)

    if assign:
        activate_take(rig, action)
    return Take(action, key_actions, frame_start, frame_start + T - 1)


def _mark_take(action, start: int, end: int, face: bool = False) -> None:
    action.use_fake_user = True
    action["cospeech_face_take" if face else "cospeech_take"] = True
    action["cospeech_frame_start"] = int(start)
    action["cospeech_frame_end"] = int(end)
    action.use_frame_range = True
    action.frame_start, action.frame_end = start, end


def activate_take(rig: RigInfo, action) -> None:
    """Make take ``action`` (and its shape-key actions) active on the rig.

    Whatever action was active before keeps a fake user, so switching takes
    never loses one.
    """
    arm = rig.armature
    prev = arm.animation_data.action if arm.animation_data else None
    if prev is not None:
        prev.use_fake_user = True
    compat.assign_action(arm, action)
    names = [n for n in str(action.get("cospeech_key_action", "")).split(",") if n]
    key_actions = [bpy.data.actions[n] for n in names if n in bpy.data.actions]
    for mesh, _ in rig.expression_meshes:
        key = mesh.data.shape_keys
        match = [a for a in key_actions if len(a.slots) and a.slots[0].name_display == key.name]
        kact = match[0] if match else (key_actions[0] if key_actions else None)
        kprev = key.animation_data.action if key.animation_data else None
        if kprev is not None:
            kprev.use_fake_user = True
        if kact is not None:
            compat.assign_action(key, kact)


def takes_of(armature) -> list:
    """Armature take actions made by CoSpeech whose slot was made for ``armature``, by name."""
    return sorted((a for a in bpy.data.actions if a.get("cospeech_take") and len(a.slots)
                   and a.get("cospeech_armature", armature.name) == armature.name), key=lambda a: a.name)
