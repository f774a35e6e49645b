"""Measure a real rig by posing it: which mapped bone follows which (through
parents or constraints, e.g. Rigify's MCH bones), and where the feet land
in the SMPL-X standing pose (the floor calibration of root motion).  Every
function restores the pose, the properties it touched and the active action.
"""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix
from scipy.spatial.transform import Rotation

from ..model import skeleton as sk
from ..model.motion import MotionClip

#: Armature custom property: where the character stood before its first
#: take (root bone ``location`` x3, lowest ankle height), see :mod:`addon.retarget`.
ROOT_BASE = "cospeech_root_base"


def rot_part(m) -> np.ndarray:
    """Orthonormal rotation part of a 3x3/4x4 matrix (scale removed)."""
    a = np.array(m, np.float64)[:3, :3]
    u, _s, vt = np.linalg.svd(a)
    r = u @ vt
    return r if np.linalg.det(r) > 0 else u @ np.diag([1, 1, -1]) @ vt


def probe_followers(ob, names: list[str], switches: dict) -> tuple[dict[str, str | None], list[str]]:
    """The mapped bone each mapped bone follows, found on the real rig.

    With ``switches`` set as the takes will key them, rotates each mapped bone
    in turn (``matrix_basis``), evaluates the rig (``view_layer.update``) and
    records whose parent rotation turned.  A bone follows the deepest such
    bone (the one that itself follows the most).  The pose, the properties,
    the active action and everything else are restored after.

    Returns:
        ``({bone: followed bone or None}, notes)``; a note names each bone whose
        parent turns by a different angle than the bone it follows (a partial
        constraint: the transfer is approximate there).
    """
    pose = ob.pose
    ad = ob.animation_data
    saved_action = ad.action if ad is not None else None
    saved = {pb.name: pb.matrix_basis.copy() for pb in pose.bones}
    saved_props = {k: pose.bones[k[0]][k[1]] for k in switches}
    view_layer = bpy.context.view_layer
    test_r = Rotation.from_rotvec([0.31, 0.47, 0.83]).as_matrix()
    test = Matrix(test_r.tolist()).to_4x4()
    turned = {n: {} for n in names}     # n -> {m: parent's world delta when m turns}
    own = {}                            # m -> its own world delta
    try:
        if ad is not None and saved_action is not None:
            ad.action = None
        for (bone, prop), value in switches.items():
            pose.bones[bone][prop] = value
        for pb in pose.bones:
            pb.matrix_basis = Matrix.Identity(4)
        view_layer.update()

        def rots():
            return ({n: rot_part(pose.bones[n].parent.matrix) if pose.bones[n].parent else None for n in names},
                    {n: rot_part(pose.bones[n].matrix) for n in names})
        base_p, base_b = rots()
        for m in names:
            pose.bones[m].matrix_basis = test
            view_layer.update()
            now_p, now_b = rots()
            own[m] = now_b[m] @ base_b[m].T
            for n in names:
                if n != m and base_p[n] is not None and np.abs(now_p[n] - base_p[n]).max() > 1e-5:
                    turned[n][m] = now_p[n] @ base_p[n].T
            pose.bones[m].matrix_basis = Matrix.Identity(4)
    finally:
        for pb in pose.bones:
            pb.matrix_basis = saved[pb.name]
        for (bone, prop), value in saved_props.items():
            pose.bones[bone][prop] = value
        if ad is not None and saved_action is not None:
            ad.action = saved_action
        view_layer.update()
    follows, notes = {}, []
    for n in names:
        m = max(turned[n], key=lambda k: len(turned[k]), default=None)
        follows[n] = m
        if m is not None:
            err = np.degrees(Rotation.from_matrix(turned[n][m] @ own[m].T).magnitude())
            if err > 0.5:
                notes.append(f"'{n}' follows '{m}' only in part ({err:.0f}° off in a test turn): "
                             "its rotation is approximate")
    return follows, notes


def _lowest_ankle(ob, names: list[str]) -> float:
    mw = ob.matrix_world
    return min(float((mw @ ob.pose.bones[n].head)[2]) for n in names)


def _standing_ankle(ob, ankles: list[str]) -> float:
    """World height of the character's lowest ankle where it stands before the
    first take: stored with the root base, else as displayed now (an armature
    already playing a take: its rest pose)."""
    if ROOT_BASE in ob.keys() and len(ob[ROOT_BASE]) > 3:
        return float(ob[ROOT_BASE][3])
    ad = ob.animation_data
    if ad is not None and ad.action is not None and ad.action.get("cospeech_take"):
        saved = {pb.name: pb.matrix_basis.copy() for pb in ob.pose.bones}
        act = ad.action
        try:
            ad.action = None
            for pb in ob.pose.bones:
                pb.matrix_basis = Matrix.Identity(4)
            bpy.context.view_layer.update()
            return _lowest_ankle(ob, ankles)
        finally:
            ad.action = act
            for pb in ob.pose.bones:
                pb.matrix_basis = saved[pb.name]
            bpy.context.view_layer.update()
    bpy.context.view_layer.update()
    return _lowest_ankle(ob, ankles)


def calibrate_floor(ob, rt, ankles: list[str]) -> tuple[float, float]:
    """Vertical correction (world units) so that the SMPL-X standing pose
    (zero pose at the standing ``trans``) puts the character's lowest ankle
    where it stood: the character is posed once as that pose (real rig,
    constraints included), its ankles measured, and everything restored.
    Corrects for rest poses whose legs differ in direction from SMPL-X's.

    Args:
        ob: the armature object.
        rt: its :class:`addon.retarget.Retarget` (``channels``, ``switches``).
        ankles: names of the bones following SMPL-X's ankles.
    Returns:
        ``(dz, stood)``: the correction and the ankle height it aims at (world units).
    """
    stood = rt.stand_ankle = _standing_ankle(ob, ankles)     # what the planted feet aim at
    zero = MotionClip(np.zeros((1, 165), np.float32), np.zeros((1, 100), np.float32),
                      np.array([[0.0, sk.STANDING_TRANS_Y, 0.0]], np.float32), 30.0)
    pose, ad = ob.pose, ob.animation_data
    act = ad.action if ad is not None else None
    saved = {pb.name: pb.matrix_basis.copy() for pb in pose.bones}
    saved_props = {k: pose.bones[k[0]][k[1]] for k in rt.switches}
    try:
        if act is not None:
            ad.action = None
        for (path, idx), bone, values in rt.channels(zero, sk.BAKE_PARTS):
            pb = pose.bones[bone]
            attr = path.rsplit(".", 1)[-1]
            if attr in ("rotation_quaternion", "rotation_euler", "location"):
                getattr(pb, attr)[idx] = float(values[0])
            else:
                pb[path.split('"]["')[-1].rstrip('"]')] = float(values[0])
        bpy.context.view_layer.update()
        posed = _lowest_ankle(ob, ankles)
    finally:
        for pb in pose.bones:
            pb.matrix_basis = saved[pb.name]
        for (bone, prop), value in saved_props.items():
            pose.bones[bone][prop] = value
        if act is not None:
            ad.action = act
        bpy.context.view_layer.update()
    return stood - posed, stood
