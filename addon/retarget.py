"""Retarget SMPL-X motion onto another armature (Rigify, Mixamo, UE5, VRM …).

Method: world-space rotation transfer relative to each skeleton's rest pose.

* Source: SMPL-X world rotations ``G_j(t)`` (forward kinematics of the
  axis-angle poses) in Blender axes (SMPL-X (x, y, z) → Blender (x, -z, y)),
  turned about the vertical so the SMPL-X body faces where the target faces
  (target left = head of its left upper arm minus the right one's).
* Rest alignment: for each mapped target bone, the shortest rotation
  ``A_b`` taking the source's rest direction (its joint → the next mapped
  joint down the chain: elbow → wrist, wrist → middle1 …) to the target's
  (the heads of the same two bones).  This absorbs A-pose vs T-pose and
  different bone axes/rolls.  Bones with no mapped child (head, finger tips,
  toes) take their nearest mapped ancestor's ``A``, keeping the target's rest
  relation to it.
* Posed: target world rotation ``W_b(t) = G_b(t) · A_b⁻¹ · M_b`` where ``M_b``
  is the bone's rest world rotation and ``G_b`` the (possibly slerped, see
  :mod:`bone_maps`) source world rotation.  The local pose quaternion is
  ``Q_b = M_b⁻¹ · M_p · W_p(t)⁻¹ · W_b(t)`` with ``p`` the mapped bone that b
  follows; found by probing the real rig (rotate each mapped bone, see whose
  parents turn), so rigs whose controls follow through constraints
  (Rigify's MCH bones) are handled like plain parenting.
* Root: the hips move by the motion's *offset* from its standing pose
  (:func:`model.skeleton.standing_offset`: vertical trans minus
  ``STANDING_TRANS_Y``, horizontal as generated about the SMPL-X origin), scaled by
  ``s`` = target hip height / SMPL-X hip height (rest pelvis above the
  feet), added to where the hips bone stood before the first take (its pose
  ``location`` as the file displays it: importers put the displayed hips
  there, e.g. glTF rest poses offset from the shown mesh); only the vertical
  part with ``root_motion="IN_PLACE"``.  The character stands on its own
  floor, never 1.3 m above it.

The transfer is a numpy batch over all frames (no per-frame evaluation).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from ..model import skeleton as sk
from ..model.motion import MotionClip
from . import bone_maps, gaze
from .rig_probe import ROOT_BASE, calibrate_floor, probe_followers, rot_part

#: SMPL-X axes → Blender axes: (x, y, z) → (x, -z, y).
SMPLX_TO_BLENDER = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])

#: Chains along which a bone's alignment direction is taken (rest joint → next
#: mapped joint of the same chain).  The hand points at middle1.
_CHAINS = [("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
for _s in ("left", "right"):
    _CHAINS += [(f"{_s}_collar", f"{_s}_shoulder", f"{_s}_elbow", f"{_s}_wrist",
                 f"{_s}_middle1", f"{_s}_middle2", f"{_s}_middle3"),
                (f"{_s}_hip", f"{_s}_knee", f"{_s}_ankle", f"{_s}_foot")]
    _CHAINS += [tuple(f"{_s}_{f}{k}" for k in (1, 2, 3)) for f in ("thumb", "index", "ring", "pinky")]
_CHAIN_POS = {j: (c, i) for c, chain in enumerate(_CHAINS) for i, j in enumerate(chain)}

from .errors import RigError  # noqa: E402


class RetargetError(RigError):
    """The armature cannot receive retargeted motion; the message says why."""


@dataclass
class MappedBone:
    """One target bone and how it follows the source."""

    name: str
    source: tuple[str, str, float]      # (joint_a, joint_b, t), see bone_maps
    rest: np.ndarray                    # (3, 3) rest world rotation M_b
    align: np.ndarray                   # (3, 3) A_b: source rest direction -> target's
    parent: int = -1                    # index of the mapped bone it follows, -1: none
    rotation_mode: str = "QUATERNION"


@dataclass
class Retarget:
    """A target armature prepared for :meth:`channels` (see module docstring).

    Attributes:
        convention: key of :data:`bone_maps.CONVENTIONS` or "CUSTOM".
        bones: mapped bones, parents before children.
        facing: (3, 3) rotation about world Z turning SMPL-X's facing into the target's.
        root: index into ``bones`` of the bone keyed with location, or -1.
        root_scale: target hip height / SMPL-X hip height.
        root_to_local: (3, 3) world offset → the root bone's pose ``location``.
        root_motion: "KEEP" or "IN_PLACE" (horizontal translation dropped).
        root_base: (3,) the root bone's pose ``location`` the offset is added to:
            ``stand_base`` (where it stood before the first take,
            ``Object["cospeech_root_base"]``) plus the floor calibration.
        location_bone: the bone keyed with ``location``: the hips bone, or its
            nearest ancestor not connected to its parent when the hips are
            connected (FBX imports connect ``Hips`` to ``Root``; Blender ignores
            the location of a connected bone).
        leg_chains: per leg, indices into ``bones`` from the root down to the
            ankle along the bones each follows (empty: no planted feet).
        rest_heads: (B, 3) world rest heads of ``bones``.
        stand_base, stand_ankle: that location and the lowest ankle's world
            height there (what the calibration aims at).
        switches: ``{(pose bone, property): value}`` keyed constant in every take.
        notes: warnings for the user (bones followed only partially …).
        gaze: eye gaze-target controls keyed with location (:mod:`addon.gaze`; Rigify's ``eye.L``).
    """

    convention: str
    bones: list[MappedBone]
    facing: np.ndarray
    root: int = -1
    root_scale: float = 1.0
    root_to_local: np.ndarray = field(default_factory=lambda: np.eye(3))
    root_motion: str = "KEEP"
    root_base: np.ndarray = field(default_factory=lambda: np.zeros(3))
    location_bone: str = ""
    leg_chains: list = field(default_factory=list)
    rest_heads: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    stand_base: np.ndarray = field(default_factory=lambda: np.zeros(3))
    stand_ankle: float = 0.0
    switches: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    gaze: list = field(default_factory=list)

    # ------------------------------------------------------------ the math
    def source_world(self, clip: MotionClip) -> np.ndarray:
        """(T, 55, 3, 3) SMPL-X world joint rotations in Blender axes, turned by ``facing``."""
        T = clip.num_frames
        local = Rotation.from_rotvec(clip.joint_rotvecs().reshape(-1, 3).astype(np.float64)
                                     ).as_matrix().reshape(T, sk.NUM_JOINTS, 3, 3)
        world = np.empty_like(local)
        for j, p in enumerate(sk.PARENTS):
            world[:, j] = local[:, j] if p < 0 else world[:, p] @ local[:, j]
        basis = self.facing @ SMPLX_TO_BLENDER
        return basis @ world @ basis.T

    def world_rotations(self, clip: MotionClip, G: np.ndarray | None = None) -> np.ndarray:
        """(T, B, 3, 3) target bone world rotations ``W_b(t)`` (rest = ``M_b``); ``G``: :meth:`source_world`."""
        G = self.source_world(clip) if G is None else G
        out = np.empty((clip.num_frames, len(self.bones), 3, 3))
        for i, b in enumerate(self.bones):
            a, c, t = b.source
            Ga = G[:, sk.JOINT_INDEX[a]]
            if a != c and t > 0:
                Gc = G[:, sk.JOINT_INDEX[c]]
                rel = Rotation.from_matrix(np.swapaxes(Ga, 1, 2) @ Gc).as_rotvec()
                Ga = Ga @ Rotation.from_rotvec(t * rel).as_matrix()
            out[:, i] = Ga @ b.align.T @ b.rest
        return out

    def local_quaternions(self, clip: MotionClip, W: np.ndarray | None = None) -> np.ndarray:
        """(T, B, 4) w-first pose quaternions, sign-continuous over time."""
        W = self.world_rotations(clip) if W is None else W
        Q = np.empty_like(W)
        for i, b in enumerate(self.bones):
            if b.parent < 0:
                Q[:, i] = b.rest.T @ W[:, i]
            else:
                p = self.bones[b.parent]
                Q[:, i] = b.rest.T @ p.rest @ np.swapaxes(W[:, b.parent], 1, 2) @ W[:, i]
        T, B = Q.shape[:2]
        q = Rotation.from_matrix(Q.reshape(-1, 3, 3)).as_quat().reshape(T, B, 4)[..., [3, 0, 1, 2]]
        flip = np.cumsum(np.concatenate([np.zeros((1, B), bool),
                                         np.einsum("tbi,tbi->tb", q[1:], q[:-1]) < 0]), 0) % 2 == 1
        q[flip] *= -1
        return q

    def root_location(self, clip: MotionClip, W: np.ndarray | None = None) -> np.ndarray:
        """(T, 3) pose ``location`` of the root bone (armature units, bone rest axes).

        Horizontal: the motion's offset, scaled (none ``IN_PLACE``).  Vertical:
        with leg chains (:meth:`feet_height`) the hips go where the lowest
        ankle stays on the spot it stood on, frame by frame (feet planted, as
        a standing speaker's are; knee bends lower the hips); without, the
        motion's vertical offset from standing, scaled.
        """
        off = sk.standing_offset(clip.trans, "NONE" if self.root_motion == "IN_PLACE" else "ABSOLUTE")
        delta = (self.facing @ SMPLX_TO_BLENDER @ off.T).T * self.root_scale
        if self.leg_chains:
            W = self.world_rotations(clip) if W is None else W
            base_z = float((np.linalg.inv(self.root_to_local) @ self.stand_base)[2])
            delta[:, 2] = self.stand_ankle - base_z - self.feet_height(W)
        return self.root_base + delta @ self.root_to_local.T

    def feet_height(self, W: np.ndarray) -> np.ndarray:
        """(T,) world height of the lowest ankle with the root bone at its rest
        (forward kinematics of the mapped leg chains: each head follows the
        bone it follows, rotated by that bone's world rotation ``W``)."""
        low = None
        for chain in self.leg_chains:
            pos = np.broadcast_to(self.rest_heads[chain[0]], (W.shape[0], 3)).copy()
            for a, b in zip(chain[:-1], chain[1:]):
                off = self.bones[a].rest.T @ (self.rest_heads[b] - self.rest_heads[a])
                pos += W[:, a] @ off
            low = pos[:, 2] if low is None else np.minimum(low, pos[:, 2])
        return low

    def channels(self, clip: MotionClip, parts):
        """Armature f-curve values, as :meth:`addon.bake_target.ArmatureTarget.channels` yields them.

        Quaternion bones get ``rotation_quaternion``, Euler bones
        ``rotation_euler`` in their own order (unwrapped over time).
        """
        on = {j for p in parts for j in _joint_names_of(p)}
        G = self.source_world(clip)
        W = self.world_rotations(clip, G)
        q = self.local_quaternions(clip, W)
        for i, b in enumerate(self.bones):
            if b.source[0] not in on:
                continue
            path = f'pose.bones["{b.name}"]'
            if b.rotation_mode in ("QUATERNION", "AXIS_ANGLE"):
                for c in range(4):
                    yield (path + ".rotation_quaternion", c), b.name, q[:, i, c]
            else:
                order = b.rotation_mode
                ang = Rotation.from_quat(q[:, i][:, [1, 2, 3, 0]]).as_euler(order.lower())
                ang = np.unwrap(ang, axis=0)
                for k, axis in enumerate(order):
                    yield (path + ".rotation_euler", "XYZ".index(axis)), b.name, ang[:, k]
            if i == self.root and "root" in parts:
                loc = self.root_location(clip, W)
                lb = self.location_bone or b.name
                for c in range(3):
                    yield (f'pose.bones["{lb}"].location', c), lb, loc[:, c]
        heads = [b.align for b in self.bones if b.source[0] == "head"]
        if self.gaze and heads and {g.joint for g in self.gaze} & on:
            for bone, loc in gaze.locations(self.gaze, G, heads[0]).items():
                for c in range(3):
                    yield (f'pose.bones["{bone}"].location', c), bone, loc[:, c]
        T = clip.num_frames
        for (bone, prop), value in self.switches.items():
            yield (f'pose.bones["{bone}"]["{prop}"]', 0), bone, np.full(T, value)


def _joint_names_of(part: str) -> set:
    return {sk.JOINT_NAMES[j] for j in sk.BAKE_PARTS[part]}


# ----------------------------------------------------------- preparation
def _shortest_rotation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking unit direction ``u`` onto ``v`` by the shortest arc."""
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    axis = np.cross(u, v)
    s, c = np.linalg.norm(axis), float(np.clip(u @ v, -1, 1))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(u, [1.0, 0, 0] if abs(u[0]) < 0.9 else [0, 1.0, 0])
        return Rotation.from_rotvec(np.pi * perp / np.linalg.norm(perp)).as_matrix()
    return Rotation.from_rotvec(axis / s * np.arctan2(s, c)).as_matrix()


def _source_rest(facing: np.ndarray) -> dict[str, np.ndarray]:
    rest = sk.smplx_to_blender(sk.rest_joints()) @ facing.T
    return {n: rest[i] for i, n in enumerate(sk.JOINT_NAMES)}


def _spec_point(points: dict, src) -> np.ndarray:
    a, b, t = src
    return (1 - t) * points[a] + t * points[b]


def _chain_key(src):
    a, b, t = src
    c, i = _CHAIN_POS.get(a, (-1, 0))
    return c, i + t


def _check_object(ob) -> None:
    if ob is None or ob.type != "ARMATURE":
        raise RetargetError("Select the character's armature.")
    s = np.array(ob.matrix_world.to_scale())
    if np.ptp(s) > 1e-4 * max(abs(s).max(), 1e-9):
        raise RetargetError(
            f"Armature '{ob.name}' has a non-uniform scale {tuple(round(float(x), 4) for x in s)}: "
            "rotations cannot be transferred exactly. Apply the scale (Ctrl+A ▸ Scale) first.")
    if ob.mode == "EDIT":
        raise RetargetError(f"Armature '{ob.name}' is in Edit Mode: leave it (Tab) before generating.")


def prepare(ob, mapping: dict | None = None, convention: str = "",
            root_motion: str = "KEEP") -> Retarget:
    """Prepare armature object ``ob`` for retargeting.

    Args:
        ob: the target armature object (object mode; uniform scale).
        mapping: ``{bone name: (joint_a, joint_b, t)}``; None detects one by
            bone names (:func:`bone_maps.detect`).
        convention: label recorded with a given mapping.
        root_motion: "KEEP" (hips travel as the source's) or "IN_PLACE".
    Raises:
        RetargetError: not an armature, Edit Mode, non-uniform scale, no
            convention recognised, required bones missing, or a bone mapped to
            an unknown joint / twice by name.
    """
    _check_object(ob)
    if mapping is None:
        convention, mapping = bone_maps.detect(b.name for b in ob.data.bones)
        if not mapping:
            raise RetargetError(
                f"Armature '{ob.name}': no bone names of Rigify, Mixamo, Unreal Engine 5 or VRM "
                "were found; map its bones in the Bone Map list.")
    aims = gaze.aim_targets(ob)          # gaze controls are keyed with location, never rotated
    mapping = {k: v for k, v in mapping.items() if k in ob.data.bones and k not in aims}
    missing = bone_maps.missing_required(mapping)
    if missing:
        raise RetargetError(
            f"Armature '{ob.name}' ({bone_maps.LABELS.get(convention, convention or 'custom')}): "
            f"no bone follows {', '.join(missing)}; map them in the Bone Map list.")
    for src in mapping.values():
        for j in src[:2]:
            if j not in sk.JOINT_INDEX:
                raise RetargetError(f"'{j}' in the bone map is not an SMPL-X joint name.")

    obj_rot = rot_part(ob.matrix_world)
    obj_scale = float(np.mean(np.array(ob.matrix_world.to_scale())))
    heads = {n: np.array(ob.matrix_world @ ob.data.bones[n].head_local) for n in mapping}
    rests = {n: obj_rot @ rot_part(ob.data.bones[n].matrix_local) for n in mapping}

    # facing: turn SMPL-X's left (+X) onto the target's left, about world Z
    by_joint = {src[0]: n for n, src in mapping.items() if src[2] == 0.0}
    left = heads[by_joint["left_shoulder"]] - heads[by_joint["right_shoulder"]]
    left += heads[by_joint["left_hip"]] - heads[by_joint["right_hip"]]
    yaw = float(np.arctan2(left[1], left[0]))
    facing = Rotation.from_rotvec([0.0, 0.0, yaw]).as_matrix()
    src_pts = _source_rest(facing)

    # alignment: source rest direction -> target rest direction, per chain
    names = list(mapping)
    align = {}
    for n in names:
        c, pos = _chain_key(mapping[n])
        nxt = [m for m in names if _chain_key(mapping[m])[0] == c and c >= 0
               and _chain_key(mapping[m])[1] > pos]
        if not nxt:
            continue
        m = min(nxt, key=lambda k: _chain_key(mapping[k])[1])
        u = _spec_point(src_pts, mapping[m]) - _spec_point(src_pts, mapping[n])
        v = heads[m] - heads[n]
        if np.linalg.norm(v) > 1e-6 and np.linalg.norm(u) > 1e-6:
            align[n] = _shortest_rotation(u, v)

    switches = {}   # Rigify's IK/FK and follow switches, wherever a rig has them
    for bone in bone_maps.RIGIFY_FK_SWITCHES:
        pb = ob.pose.bones.get(bone)
        if pb is not None and "IK_FK" in pb.keys():
            switches[(bone, "IK_FK")] = 1.0
    torso = ob.pose.bones.get("torso")
    for prop in ("neck_follow", "head_follow"):
        if torso is not None and prop in torso.keys():
            switches[("torso", prop)] = 1.0
    for bone, prop in gaze.FOLLOW_SWITCHES if aims else ():
        if bone in ob.pose.bones and prop in ob.pose.bones[bone].keys():
            switches[(bone, prop)] = 1.0
    follows, notes = probe_followers(ob, names, switches)

    def depth(n):
        d = 0
        while follows[n] is not None and d < len(names):
            n, d = follows[n], d + 1
        return d
    order = sorted(names, key=lambda n: (depth(n), names.index(n)))
    index = {n: i for i, n in enumerate(order)}
    bones = []
    for n in order:
        parent = follows[n]
        bones.append(MappedBone(n, tuple(mapping[n]), rests[n], np.eye(3),
                                index[parent] if parent is not None else -1,
                                ob.pose.bones[n].rotation_mode))
    # leaves (no mapped child on their chain) keep their rest relation to the bone they follow
    for b in bones:
        if b.name in align:
            b.align = align[b.name]
        else:
            p = b.parent
            while p >= 0 and bones[p].name not in align:
                p = bones[p].parent
            b.align = align[bones[p].name] if p >= 0 else np.eye(3)

    rt = Retarget(convention or "CUSTOM", bones, facing, root_motion=root_motion, switches=switches,
                  notes=notes, gaze=gaze.prepare(ob, aims))
    roots = [i for i, b in enumerate(bones) if b.source[0] == "pelvis"]
    if roots:
        rt.root = roots[0]
        hip = heads[bones[rt.root].name]
        feet = [heads[n] for n, s in mapping.items() if s[0].endswith(("_ankle", "_foot"))]
        floor = min((f[2] for f in feet), default=float(np.array(ob.matrix_world.translation)[2]))
        rest = sk.smplx_to_blender(sk.rest_joints())
        src_h = rest[sk.JOINT_INDEX["pelvis"], 2] - rest[[sk.JOINT_INDEX["left_foot"],
                                                           sk.JOINT_INDEX["right_foot"]], 2].min()
        rt.root_scale = float(max(hip[2] - floor, 1e-6) / src_h)
        lb = ob.data.bones[bones[rt.root].name]
        while lb.use_connect and lb.parent is not None:
            lb = lb.parent
        if lb.use_connect:
            raise RetargetError(f"Armature '{ob.name}': the hips bone '{bones[rt.root].name}' is connected "
                                "to its parents up to the top, so it cannot be moved; disconnect it "
                                "(Edit Mode ▸ Bone ▸ Relations ▸ Connected) to get root motion.")
        rt.location_bone = lb.name
        rt.root_to_local = (obj_rot @ rot_part(lb.matrix_local)).T / max(obj_scale, 1e-12)
        rt.root_base = rt.stand_base = root_base(ob, lb.name)
        ankles = [n for n, s in mapping.items() if s[0].endswith("_ankle") and s[2] == 0.0]
        rt.rest_heads = np.array([heads[b.name] for b in bones])
        rt.leg_chains = _leg_chains(bones, rt.root, ankles)
        if ankles:
            dz, rt.stand_ankle = calibrate_floor(ob, rt, ankles)
            rt.root_base = rt.stand_base + rt.root_to_local @ np.array([0.0, 0.0, dz])
    return rt


def _leg_chains(bones: list[MappedBone], root: int, ankles: list[str]) -> list[list[int]]:
    """Root → … → ankle index chains along the followed bones; [] unless every ankle reaches the root."""
    chains = []
    index = {b.name: i for i, b in enumerate(bones)}
    for a in ankles:
        chain, i = [], index[a]
        while i >= 0 and i != root and len(chain) < len(bones):
            chain.append(i)
            i = bones[i].parent
        if i != root:
            return []
        chains.append([root] + chain[::-1])
    return chains


def root_base(ob, bone: str) -> np.ndarray:
    """(3,) pose ``location`` of ``bone`` that root offsets are added to,
    before the standing calibration (:func:`addon.rig_probe.calibrate_floor`).

    ``ob["cospeech_root_base"]`` once a take was baked (:func:`remember_root_base`);
    before that, the bone's location as the file displays it — unless the
    armature already plays a CoSpeech take (an older file), then the rest (0).
    """
    if ROOT_BASE in ob.keys():
        return np.array(ob[ROOT_BASE][:3], np.float64)
    ad = ob.animation_data
    if ad is not None and ad.action is not None and ad.action.get("cospeech_take"):
        return np.zeros(3)
    return np.array(ob.pose.bones[bone].location, np.float64)


def remember_root_base(ob, rt: Retarget) -> None:
    """Store where the character stood (``rt.root_base`` before calibration
    and its lowest ankle height) on the armature at its first take, so later
    takes, Regenerate Range and Adjust Take stand on the same spot."""
    if rt.root >= 0 and ROOT_BASE not in ob.keys():
        ob[ROOT_BASE] = [float(x) for x in rt.stand_base] + [float(rt.stand_ankle)]
