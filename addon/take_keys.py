"""A take's keys as motion and back: read a take (hand edits included) as a
clip, find the frames the user locked by selecting keys, and splice a
regenerated range into a copy of a take so every key outside the range
stays byte-identical."""
from __future__ import annotations

import bpy
import numpy as np
from scipy.spatial.transform import Rotation

from ..model.motion import MotionClip
from . import bake, compat, raw_store, rig
from .bake_target import targets_of
from .errors import GenerationError


def take_to_clip(info: rig.RigInfo, take, f0: int, f1: int, fps: float) -> MotionClip:
    """The take's keys (hand edits included) at frames f0..f1 as a clip at ``fps``.

    Takes retargeted onto another skeleton are read from the model output
    stored with them (:func:`raw_store.load_raw`): hand edits there are
    kept by the splice, but do not steer the in-painting.

    Takes carry a key on every frame, so each channel is read with
    ``foreach_get`` and linearly interpolated between keys where the user
    deleted some (``np.interp``; far faster than ``FCurve.evaluate`` per frame
    on long takes, identical on keyed frames)."""
    if info.kind == "retarget":   # keys on another skeleton: read back the model's own output
        raw = raw_store.load_raw(take)
        if raw is None:
            raise GenerationError(
                f"Take '{take.name}' on '{info.armature.name}' keeps no model output (takes over "
                f"{bake.RAW_TAKE_SECONDS / 60:.0f} minutes, or imported): it cannot be regenerated "
                "on a retargeted character; generate a new take instead.")
        return raw.resample(fps).held(f1 - f0 + 1)
    frames = np.arange(f0, f1 + 1)
    T = len(frames)
    poses = np.zeros((T, 165))
    trans = np.zeros((T, 3))
    exp = np.zeros((T, 100))
    bag = compat.action_channelbag(take)
    curves = {(fc.data_path, fc.array_index): fc for fc in (bag.fcurves if bag else [])}

    def sample(fc):
        co = bake.read_keys(fc)
        return np.interp(frames, co[:, 0], co[:, 1]) if len(co) else np.zeros(T)

    for bone, joints in info.bone_sources.items():
        path = f'pose.bones["{bone}"].rotation_quaternion'
        if (path, 0) not in curves:
            continue
        q = np.stack([sample(curves[(path, c)]) for c in range(4)], 1)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        rv = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_rotvec()
        j = joints[-1]
        poses[:, 3 * j:3 * j + 3] = rv
    if info.location_bone:
        path = f'pose.bones["{info.location_bone}"].location'
        for c in range(3):
            if (path, c) in curves:
                trans[:, c] = sample(curves[(path, c)]) + info.trans_origin[c]
    names = [n for n in str(take.get("cospeech_key_action", "")).split(",") if n]
    if names and names[0] in bpy.data.actions:
        kbag = compat.action_channelbag(bpy.data.actions[names[0]])
        for fc in (kbag.fcurves if kbag else []):
            key = fc.data_path.split('"')[1] if '"' in fc.data_path else ""
            if key.startswith(rig.EXP_PREFIX) and key[3:].isdigit() and int(key[3:]) < 100:
                exp[:, int(key[3:])] = sample(fc)
    raw = raw_store.load_raw(take)      # the ARKit mouth is kept with the model output, not as bone keys
    mouth = None
    if raw is not None and raw.arkit_mouth is not None:   # linear, at the scene rate (no joint slerp)
        t = np.minimum(np.arange(T) / fps, (raw.num_frames - 1) / raw.fps)
        mouth = np.stack([np.interp(t, np.arange(raw.num_frames) / raw.fps, c) for c in raw.arkit_mouth.T], 1)
    if mouth is None:                   # no stored output (long or imported takes): the face's ARKit keys
        mouth = _mouth_from_face_keys(info, take, sample)
    return MotionClip(poses, exp, trans, fps, arkit_mouth=mouth)


def _mouth_from_face_keys(info: rig.RigInfo, take, sample) -> np.ndarray | None:
    """(T, 27) ARKit mouth read from the first face mesh whose take action keys
    ``jawOpen`` (shapes it lacks read 0), or None."""
    from ..model.motion import ARKIT_MOUTH_NAMES
    from .bake_target import FaceTarget, face_meshes
    for mesh in face_meshes(info):
        t = FaceTarget.of_take(mesh, take)
        act = t.action_of(take)
        if act is None:
            continue
        by_shape = {n: k for k, (kind, n) in t.keys.items() if kind == "arkit"}
        curves = {fc.data_path: fc for fc in compat.action_fcurves(act)}
        fcs = [curves.get(f'key_blocks["{by_shape[n]}"].value') if n in by_shape else None
               for n in ARKIT_MOUTH_NAMES]
        jaw = fcs[ARKIT_MOUTH_NAMES.index("jawOpen")]
        if jaw is None:
            continue
        n = len(sample(jaw))
        return np.stack([sample(fc) if fc is not None else np.zeros(n) for fc in fcs], 1)
    return None


def locked_frames(take, a: int, b: int) -> set:
    """Frames in [a, b] that have a selected keyframe on any of the take's f-curves."""
    out = set()
    for fc in compat.action_fcurves(take):
        n = len(fc.keyframe_points)
        if n == 0:
            continue
        sel = np.zeros(n, bool)
        fc.keyframe_points.foreach_get("select_control_point", sel)
        if not sel.any():
            continue
        for f in np.round(bake.read_keys(fc)[sel, 0]).astype(int):
            if a <= f <= b:
                out.add(int(f))
    return out


def regenerated_take(job, clip: MotionClip, seed: int, scene):
    """Copy the base take and overwrite only the keys on frames in the range
    (minus locked frames) with the new clip; all other keys stay byte-identical.

    ``clip`` is the sampled window (30 fps), starting ``job.window_start``
    model frames into the take: only the window is baked, so the cost follows
    the range, not the take's length."""
    base = job.base_take
    a, b = job.regen_frames
    number = bake.next_take_number(job.rig_info.armature)
    fps = bake.scene_fps(scene)
    t_start = int(base["cospeech_frame_start"])
    n_frames = int(base["cospeech_frame_end"]) - t_start + 1
    new = clip.resample(fps)     # the sampled window (job.window_start model frames into the take)
    w0 = t_start + int(round(getattr(job, "window_start", 0) * fps / 30.0))
    fresh = bake.bake_clip(job.rig_info, new, w0, name="tmp", scene=scene, parts=job.parts,
                           assign=False, num_frames=min(new.num_frames, n_frames - (w0 - t_start)), number=0)
    action = base.copy()
    action.name = f"Take {number} · {base.name.split(' · ')[0]} frames {a}-{b} regenerated · seed {seed}"
    action["cospeech_take_number"] = number
    action["cospeech_prev_action"] = base.name
    key_names = []
    for t in targets_of(job.rig_info, job.parts):   # the face meshes are re-baked whole (generation.py)
        old, src = t.action_of(base), t.action_of(fresh.action)
        if old is None or src is None or t.kind == "face":
            continue
        copy = action if t.kind == "armature" else old.copy()
        if t.kind != "armature":
            copy.name = action.name + " (face)"
            key_names.append(copy.name)
        _splice(copy, {(fc.data_path, fc.array_index): fc for fc in compat.action_fcurves(src)},
                a, b, job.locked_frames)
        if t.kind == "armature":
            _continuous_quaternions(action, a, b)
    for tmp in [fresh.action] + list(fresh.key_actions):
        bpy.data.actions.remove(tmp)
    action["cospeech_key_action"] = ",".join(key_names)
    action["cospeech_regen_of"] = base.name
    action.use_fake_user = True
    return action


def _splice(action, fresh_curves: dict, a: int, b: int, locked: set) -> None:
    for fc in compat.action_fcurves(action):
        src = fresh_curves.get((fc.data_path, fc.array_index))
        if src is None:
            continue
        co, sco = bake.read_keys(fc), bake.read_keys(src)
        frames, sframes = np.round(co[:, 0]).astype(np.int64), np.round(sco[:, 0]).astype(np.int64)
        if not len(sframes):
            continue
        j = np.clip(np.searchsorted(sframes, frames), 0, len(sframes) - 1)
        pick = (frames >= a) & (frames <= b) & ~np.isin(frames, list(locked)) & (sframes[j] == frames)
        values = co[:, 1].copy()
        values[pick] = sco[j[pick], 1]
        if not np.array_equal(values, co[:, 1]):
            bake.write_values(fc, values)


def _continuous_quaternions(action, a: int, b: int) -> None:
    """Flip the sign of regenerated quaternion keys in [a, b] where needed so
    each follows its predecessor's hemisphere (q and -q are one rotation, but
    Blender interpolates channels independently).  Keys outside stay as they are."""
    groups: dict = {}
    for fc in compat.action_fcurves(action):
        if fc.data_path.endswith("rotation_quaternion"):
            groups.setdefault(fc.data_path, {})[fc.array_index] = fc
    for chans in groups.values():
        if len(chans) != 4:
            continue
        cos = [bake.read_keys(chans[c]) for c in range(4)]
        if len({len(co) for co in cos}) != 1:
            continue
        frames = np.round(cos[0][:, 0]).astype(int)
        q = np.stack([co[:, 1] for co in cos], 1)
        flipped = False
        inside = np.flatnonzero((frames >= a) & (frames <= b))
        for i in inside[inside > 0]:       # only the regenerated keys, in order
            if float(q[i] @ q[i - 1]) < 0:
                q[i] *= -1
                flipped = True
        if flipped:
            for c in range(4):
                bake.write_values(chans[c], q[:, c])
