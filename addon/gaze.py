"""Eyes that aim at a target: keying a gaze control's location from the generated eye rotations.

Some rigs do not rotate the eye bones directly: the eye bone carries an aim
constraint (Damped Track, Track To, Locked Track) at a *gaze target* control
in front of the face, and the animator moves the target.  Blender's Rigify
is the common case: ``MCH-eye.L`` damped-tracks ``eye.L``, a child of the
``eyes`` control 0.3 m in front of the face, which follows the head
(``eyes_follow`` = 1).  Keying a rotation on such a rig does nothing, so the
generated eye rotation is turned into a target location instead:

* rest gaze ``g0`` = target head − aiming bone's head (world rest, metres);
* the SMPL-X eye's rotation relative to its head, ``R(t) = G_head(t)ᵀ G_eye(t)``
  (world rest axes, facing-turned: :meth:`addon.retarget.Retarget.source_world`),
  taken into the target rig's head frame by the head bone's rest alignment
  ``A`` (the same alignment the head's rotation goes through);
* the target moves by ``Δ(t) = A R(t) Aᵀ g0 − g0``, expressed in the target
  bone's rest axes (its pose ``location``) and divided by the object scale.

The target keeps its rest distance from the eye, so the aim constraint turns
the eye bone by exactly the generated eye rotation (the target moves with the
head, as Rigify's ``eyes`` does with ``eyes_follow`` at 1).

Pure Python + numpy; reads bpy objects but never imports bpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import skeleton as sk
from . import bone_maps
from .rig_probe import rot_part

#: Constraint types that aim a bone at a target (the gaze-target pattern).
AIM_CONSTRAINTS = ("DAMPED_TRACK", "TRACK_TO", "LOCKED_TRACK")
#: Side-neutral eye control names (:func:`bone_maps.normalise`) -> SMPL-X eye joint.
EYE_NAMES = {"L|eye": "left_eye_smplhf", "R|eye": "right_eye_smplhf",
             "L|jadjfaceeye": "left_eye_smplhf", "R|jadjfaceeye": "right_eye_smplhf"}
#: Switches that make the gaze targets follow the head (Rigify's ``eyes`` control).
FOLLOW_SWITCHES = (("eyes", "eyes_follow"),)


@dataclass
class GazeTarget:
    """One gaze control keyed with ``location``.

    Attributes:
        bone: the target control's pose-bone name (``eye.L``).
        joint: the SMPL-X eye joint it follows (``left_eye_smplhf``).
        rest_gaze: (3,) aiming bone's head → target's head at rest, world axes, metres.
        to_local: (3, 3) world offset → the bone's pose ``location`` (rest axes / object scale).
    """

    bone: str
    joint: str
    rest_gaze: np.ndarray
    to_local: np.ndarray


def aim_targets(ob) -> dict[str, str]:
    """``{gaze control: bone aiming at it}`` for ``ob``'s eye controls (names in :data:`EYE_NAMES`)."""
    out = {}
    for pb in ob.pose.bones:
        for c in pb.constraints:
            if c.type in AIM_CONSTRAINTS and getattr(c, "target", None) == ob and c.subtarget \
                    and bone_maps.normalise(c.subtarget) in EYE_NAMES and not c.mute:
                out.setdefault(c.subtarget, pb.name)
    return out


def prepare(ob, targets: dict[str, str]) -> list[GazeTarget]:
    """:class:`GazeTarget` of every ``{control: aiming bone}`` (:func:`aim_targets`) of armature ``ob``.

    Controls whose rest head coincides with the aiming bone's (no direction
    to aim along) are left out.
    """
    mw = ob.matrix_world
    obj_rot = rot_part(mw)
    scale = max(float(np.mean(np.array(mw.to_scale()))), 1e-12)
    out = []
    for bone, aimer in targets.items():
        g0 = np.array(mw @ ob.data.bones[bone].head_local) - np.array(mw @ ob.data.bones[aimer].head_local)
        if np.linalg.norm(g0) < 1e-6:
            continue
        rest = obj_rot @ rot_part(ob.data.bones[bone].matrix_local)
        out.append(GazeTarget(bone, EYE_NAMES[bone_maps.normalise(bone)], g0, rest.T / scale))
    return out


def locations(targets: list[GazeTarget], G: np.ndarray, head_align: np.ndarray) -> dict[str, np.ndarray]:
    """``{control: (T, 3) pose location}`` from SMPL-X world rotations ``G`` (T, 55, 3, 3).

    ``head_align``: (3, 3) the head bone's rest alignment ``A`` (module doc).
    """
    Gh = G[:, sk.JOINT_INDEX["head"]]
    out = {}
    for g in targets:
        rel = np.swapaxes(Gh, 1, 2) @ G[:, sk.JOINT_INDEX[g.joint]]
        gaze = head_align @ rel @ head_align.T @ g.rest_gaze
        out[g.bone] = (gaze - g.rest_gaze) @ g.to_local.T
    return out
