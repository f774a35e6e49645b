"""Bake a :class:`MotionClip` as a new take: an armature action plus a
shape-key action, written with ``keyframe_points.add`` + ``foreach_set``.

Takes are never overwritten: every bake creates new actions (fake user set,
so they survive with no users), and the action the armature had before is
given a fake user too.  Actions carry custom properties:
``cospeech_take`` (True), ``cospeech_key_action`` (name of the shape-key
action), ``cospeech_frame_start`` / ``cospeech_frame_end``,
``cospeech_take_number`` (1, 2, …), ``cospeech_rig_id`` (the persistent id
of the armature object it belongs to, see :func:`rig_id`) and
``cospeech_prev_action`` / ``cospeech_orig_action`` (what the rig played
right before the take, and before its first take: given back when takes
are deleted).

Keys are baked deselected: in Blender a selected key is the user's way of
marking it (Regenerate Range's *Keep Selected Keys* locks those frames).
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from ..model.motion import MotionClip
from . import compat
from .bake_target import ALL_PARTS, ExpressionTarget, targets_of
from .rig import EXP_SLIDER_RANGE, RigInfo, exp_key_name

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


#: Takes longer than this (seconds) are stored as sampled f-curves.  Blender
#: keeps a keyframe (BezTriple) in ~70 bytes and a sample (FPoint) in ~16:
#: measured 1,199 MiB vs 269 MiB for 30 minutes x 323 f-curves at 30 fps, and
#: a saved 5-minute take on the default rig 273 MB as keyframes
#: (``tools/bench_long_takes.py``).  Samples play, export and regenerate like
#: keys (linear between frames) but are not selectable: Graph Editor ▸
#: Channel ▸ Convert to Keyframes (``FCurve.convert_to_keyframes``) makes
#: them editable.
SAMPLED_TAKE_SECONDS = 120.0
#: Takes up to this long (seconds) keep the model's raw output with them
#: (:mod:`addon.raw_store`, ~1 MB a minute: Adjust Take re-bakes from it,
#: Regenerate Range on a retargeted character in-paints from it); longer ones
#: read their keys (the extra copy would break the 30-minute memory budget).
RAW_TAKE_SECONDS = 600.0


def _points(fc):
    """The f-curve's keyframes, or its samples when it has been sampled."""
    if len(fc.keyframe_points) == 0 and len(fc.sampled_points):
        return fc.sampled_points
    return fc.keyframe_points


def read_keys(fc) -> np.ndarray:
    """(n, 2) float32 ``[frame, value]`` of an f-curve's keyframes, or of its
    samples (``FCurve.sampled_points``) for a sampled f-curve (``foreach_get``)."""
    pts = _points(fc)
    co = np.zeros(2 * len(pts), np.float32)
    pts.foreach_get("co", co)
    return co.reshape(-1, 2)


def write_values(fc, values: np.ndarray) -> None:
    """Replace the values of all keyframes (or samples) of ``fc`` (frames unchanged), then update."""
    co = read_keys(fc)
    co[:, 1] = values
    _points(fc).foreach_set("co", co.ravel())
    fc.update()


def deselect_keys(fc) -> None:
    """Deselect every keyframe (control point and handles) of ``fc``."""
    n = len(fc.keyframe_points)
    off = np.zeros(n, bool)
    for prop in ("select_control_point", "select_left_handle", "select_right_handle"):
        fc.keyframe_points.foreach_set(prop, off)


def write_fcurve(bag, data_path: str, index: int, frames: np.ndarray, values: np.ndarray, group=None,
                 sampled: bool = False):
    """New f-curve in channelbag ``bag`` with one LINEAR, deselected key per
    frame (``foreach_set``); ``sampled`` converts it to samples (long takes)."""
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
    deselect_keys(fc)
    fc.update()
    if sampled:   # one curve at a time: never all keyframes of a long take in memory
        fc.convert_to_samples(int(frames[0]), int(frames[-1]) + 1)   # end exclusive
    return fc


# ------------------------------------------------------------ take identity
RIG_ID = "cospeech_rig_id"


def rig_id(armature, create: bool = False) -> str:
    """Persistent id of an armature object (custom property ``cospeech_rig_id``).

    Takes record it, so they stay with their rig when the object is renamed.
    Returns "" when the rig has none and ``create`` is False (rigs from
    versions before the id existed are matched by name instead).
    """
    rid = str(armature.get(RIG_ID, ""))
    if not rid and create:
        import uuid
        rid = uuid.uuid4().hex
        armature[RIG_ID] = rid
    return rid


def _belongs_to(action, armature) -> bool:
    rid = rig_id(armature)
    take_rid = str(action.get(RIG_ID, ""))
    if take_rid and rid:
        return take_rid == rid
    return action.get("cospeech_armature", armature.name) == armature.name


def take_number(action) -> int:
    """The take's number (``cospeech_take_number``, else parsed from "Take N …", else 0)."""
    n = action.get("cospeech_take_number")
    if n is not None:
        return int(n)
    head = action.name.split(" ")
    return int(head[1]) if len(head) > 1 and head[0] == "Take" and head[1].isdigit() else 0


def next_take_number(armature) -> int:
    """One more than the highest take number of ``armature`` (1 for the first)."""
    return max((take_number(a) for a in takes_of(armature)), default=0) + 1


def scene_clip(clip: MotionClip, scene, num_frames: int | None = None) -> MotionClip:
    """``clip`` resampled to the scene frame rate (rotation slerp) and, with
    ``num_frames``, cut or its last frame held to exactly that many frames."""
    clip = clip.resample(scene_fps(scene))
    if num_frames is not None and num_frames != clip.num_frames:
        clip = clip.held(num_frames)
    return clip


def bake_clip(rig: RigInfo, clip: MotionClip, frame_start: int, name: str = "CoSpeech take",
              scene=None, parts=ALL_PARTS, assign: bool = True, num_frames: int | None = None,
              number: int | None = None) -> Take:
    """Bake ``clip`` onto ``rig`` as a new take starting at ``frame_start``.

    The clip is resampled to the scene frame rate (rotation slerp, see
    :meth:`MotionClip.resample`) so clip time t lands on scene frame
    ``frame_start + t * scene_fps``.  Parts not in ``parts`` get no f-curves.
    Expression coefficients beyond a mesh's ``Exp###`` count are dropped.

    What is keyed is the rig's :func:`addon.bake_target.targets_of`: the
    armature, and with "face" each ``Exp###`` mesh (the ARKit / viseme faces
    are baked by :func:`addon.arkit_bake.bake_arkit`).

    Args:
        rig: from :func:`addon.rig.detect_rig`.
        clip: motion in the BEAT2 layout (any fps).
        frame_start: scene frame of the clip's first frame.
        name: label; the action is named ``"Take <number> · <name>"``.
        scene: scene for the frame rate (default: context scene).
        parts: subset of :data:`addon.bake_target.PARTS` keys.
        assign: make the new actions active on the armature / meshes.
        num_frames: exact number of scene frames to key (the frames the
            sound strip is heard); the resampled clip is cut or its last
            frame held to fit.  None: all frames of the resampled clip.
        number: take number (default :func:`next_take_number`).
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
    clip = scene_clip(clip, scene, num_frames)
    T = clip.num_frames
    frames = (frame_start + np.arange(T)).astype(np.float32)
    sampled = T > SAMPLED_TAKE_SECONDS * scene_fps(scene)

    arm = rig.armature
    if rig.kind == "retarget" and "root" in parts:
        from .retarget import remember_root_base
        remember_root_base(arm, rig.retarget())
    number = next_take_number(arm) if number is None else int(number)
    name = f"Take {number} · {name}"
    targets = targets_of(rig, parts)
    action, slot, bag = compat.new_action(name, "OBJECT", arm.name)
    groups = {}
    for (path, c), bone, values in targets[0].channels(clip):
        pb = arm.pose.bones[bone]
        if path.endswith("rotation_quaternion"):
            pb.rotation_mode = "QUATERNION"
        if bone not in groups:
            groups[bone] = bag.groups.new(bone)
        write_fcurve(bag, path, c, frames, values, groups[bone], sampled)
    _mark_take(action, frame_start, frame_start + T - 1)
    action["cospeech_sampled"] = bool(sampled)
    action["cospeech_armature"] = arm.name
    action[RIG_ID] = rig_id(arm, create=True)
    action["cospeech_take_number"] = number
    _record_previous(action, arm.animation_data.action if arm.animation_data else None)

    key_actions = []
    for t in targets:
        if not isinstance(t, ExpressionTarget):
            continue
        key = t.id_data
        kact, kslot, kbag = compat.new_action(name + " (face)", "KEY", key.name)
        _record_previous(kact, key.animation_data.action if key.animation_data else None)
        for (path, _c), _group, values in t.channels(clip):
            kb = key.key_blocks[path.split('"')[1]]
            kb.slider_min = min(kb.slider_min, EXP_SLIDER_RANGE[0])
            kb.slider_max = max(kb.slider_max, EXP_SLIDER_RANGE[1])
            write_fcurve(kbag, path, 0, frames, values, sampled=sampled)
        _mark_take(kact, frame_start, frame_start + T - 1, face=True)
        key_actions.append(kact)
    action["cospeech_key_action"] = ",".join(a.name for a in key_actions)

    if assign:
        activate_take(rig, action)
    return Take(action, key_actions, frame_start, frame_start + T - 1)


def _record_previous(action, prev) -> None:
    """Remember what was playing before ``action`` (for :func:`delete_take`)."""
    if prev is None:
        return
    action["cospeech_prev_action"] = prev.name
    made_by_us = prev.get("cospeech_take") or prev.get("cospeech_face_take")
    orig = str(prev.get("cospeech_orig_action", "")) if made_by_us else prev.name
    if orig:
        action["cospeech_orig_action"] = orig


def _mark_take(action, start: int, end: int, face: bool = False) -> None:
    action.use_fake_user = True
    action["cospeech_face_take" if face else "cospeech_take"] = True
    action["cospeech_frame_start"] = int(start)
    action["cospeech_frame_end"] = int(end)
    action.use_frame_range = True
    action.frame_start, action.frame_end = start, end


def activate_take(rig: RigInfo, action) -> None:
    """Make take ``action`` active on the rig: every target of the rig
    (:func:`addon.bake_target.targets_of`) gets its action of the take.

    Whatever action was active before keeps a fake user, so switching takes
    never loses one.  A target without an action of this take keeps what it plays.
    """
    for t in targets_of(rig, take=action):
        act = t.action_of(action)
        if act is None:
            continue
        ad = t.id_data.animation_data
        if ad is not None and ad.action is not None:
            if ad.action == act:
                continue
            ad.action.use_fake_user = True
        compat.assign_action(t.id_data, act)


def takes_of(armature) -> list:
    """CoSpeech take actions of ``armature`` (matched by :func:`rig_id`, so
    renaming the rig keeps them), ordered by take number."""
    return sorted((a for a in bpy.data.actions if a.get("cospeech_take") and len(a.slots)
                   and _belongs_to(a, armature)), key=lambda a: (take_number(a), a.name))


def owner_of(action):
    """The armature object take ``action`` belongs to, or None."""
    for ob in bpy.data.objects:
        if ob.type == "ARMATURE" and _belongs_to(action, ob):
            return ob
    return None


def key_actions_of(action) -> list:
    """The shape-key (face) actions of take ``action`` that still exist."""
    names = [n for n in str(action.get("cospeech_key_action", "")).split(",") if n]
    return [bpy.data.actions[n] for n in names if n in bpy.data.actions]


def _fallback(deleted):
    """The action to play instead of ``deleted``: the one played right before
    it was made (``cospeech_prev_action``), else the user's own action from
    before the first take (``cospeech_orig_action``), else None."""
    for key in ("cospeech_prev_action", "cospeech_orig_action"):
        cand = bpy.data.actions.get(str(deleted.get(key, "")))
        if cand is not None and cand != deleted:
            return cand
    return None


def delete_take(rig: RigInfo, action) -> None:
    """Delete take ``action`` and its face actions.

    If the rig was playing it, the rig gets back what it played before the
    take was made (another take with its face, or the user's own action);
    if there was nothing, no action and the rest pose (bones at identity,
    ``Exp###`` keys at 0), instead of freezing in the deleted take's last pose.
    """
    arm = rig.armature
    faces = key_actions_of(action)
    ad = arm.animation_data
    if ad is not None and ad.action == action:
        back = _fallback(action)
        if back is not None and back.get("cospeech_take"):
            activate_take(rig, back)
        else:
            ad.action = back
            if back is None:
                for pb in arm.pose.bones:
                    pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
                    pb.rotation_euler = (0.0, 0.0, 0.0)
                    pb.location = (0.0, 0.0, 0.0)
    for mesh, n_exp in rig.expression_meshes:
        key = mesh.data.shape_keys
        kad = key.animation_data
        if kad is None or kad.action not in faces:
            continue
        kad.action = _fallback(kad.action)
        if kad.action is None:
            for k in range(n_exp):
                key.key_blocks[exp_key_name(k)].value = 0.0
    for kact in faces:
        bpy.data.actions.remove(kact)
    bpy.data.actions.remove(action)
