"""SMPL-X skeleton: joint names, kinematic tree, rest joints, forward kinematics.

Pure numpy + scipy; never imports bpy.

Sources
-------
* Joint names and order: the first 55 entries of ``JOINT_NAMES`` in the
  ``smplx`` package (``smplx/joint_names.py``); ``tests/test_skeleton.py``
  checks ours against it.
* Parents: the SMPL-X kinematic tree (``kintree_table`` of the SMPL-X model
  files), identical to the ``parents`` of ``mannequin-x``'s assets.
* Rest joint positions (neutral model, zero shape, metres, SMPL-X axes:
  +Y up, +Z forward, +X the subject's left): ``joint_rest`` of
  ``mannequin/assets/smplx_calibration.npz`` in the ``mannequin-x`` package
  (Apache-2.0), read with numpy without importing the package (its runtime
  needs numpy>=2, which Blender 4.5 does not ship).  That file has no jaw or
  eye joints; see :data:`FACE_JOINT_OFFSETS_M`.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import numpy as np
from scipy.spatial.transform import Rotation

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "jaw", "left_eye_smplhf", "right_eye_smplhf",
    "left_index1", "left_index2", "left_index3",
    "left_middle1", "left_middle2", "left_middle3",
    "left_pinky1", "left_pinky2", "left_pinky3",
    "left_ring1", "left_ring2", "left_ring3",
    "left_thumb1", "left_thumb2", "left_thumb3",
    "right_index1", "right_index2", "right_index3",
    "right_middle1", "right_middle2", "right_middle3",
    "right_pinky1", "right_pinky2", "right_pinky3",
    "right_ring1", "right_ring2", "right_ring3",
    "right_thumb1", "right_thumb2", "right_thumb3",
)
NUM_JOINTS = 55
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
    15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)

JAW = JOINT_INDEX["jaw"]
HEAD = JOINT_INDEX["head"]
#: Upper-body joints used by the EMAGE beat-consistency metric and speed
#: statistics (spine3, neck, collars, head, shoulders, elbows, wrists).
UPPER_BODY = (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21)
LEFT_HAND = tuple(range(25, 40))
RIGHT_HAND = tuple(range(40, 55))
LOWER_BODY = (1, 2, 4, 5, 7, 8, 10, 11)

#: Offsets (metres, SMPL-X axes) of the jaw and eye joints from the ``head``
#: joint.  No redistributable source has these rest positions (the SMPL-X
#: model files are licensed), so they are placed by hand: the jaw pivot
#: slightly below and in front of the head joint (near the ear line), the
#: eyes 6.5 cm apart, 3.5 cm above and 7 cm in front of the head joint,
#: inside the mannequin-x head bounds (``head_min_rest``/``head_max_rest``).
#: A user's own SMPL-X model replaces these with regressed joints.
#: Body parts a bake may include (the Animate toggles); SMPL-X joint indices per part.
BAKE_PARTS = {
    "root": (0,),                               # pelvis rotation + trans
    "lower": LOWER_BODY,
    "body": (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21),
    "hands": LEFT_HAND + RIGHT_HAND,
    "face": (22, 23, 24),                       # + expression shape keys
}

#: Vertical SMPL-X ``trans`` (metres, Y up) of a person standing on the
#: floor (y = 0) with the rest skeleton of :func:`rest_joints`: the median
#: ``trans[:, 1]`` of the BEAT2 capture ``2_scott_0_1_1`` (1.305 m; its
#: ankles then sit 0.084 m above the floor, the rest skeleton's 0.079 m).
#: Root motion on a rig is the offset from this standing pose, so a rig
#: stands where it stood (DESIGN.md, "Root motion is an offset").
STANDING_TRANS_Y = 1.305


def standing_offset(trans: np.ndarray, horizontal: str = "ABSOLUTE") -> np.ndarray:
    """(T, 3) offset of ``trans`` from the standing pose, SMPL-X axes, metres.

    Vertical: ``trans[:, 1] - STANDING_TRANS_Y``.  Horizontal (x, z):
    ``"ABSOLUTE"`` as is (the model's motion sways about the SMPL-X origin,
    as the capture does; the same on every frame of a take, so a regenerated
    window continues it), ``"NONE"`` zero (in place).

    Args:
        trans: (T, 3) SMPL-X ``trans`` (metres).
    Raises:
        ValueError: unknown ``horizontal``.
    """
    t = np.asarray(trans, np.float64).reshape(-1, 3)
    out = t.copy()
    out[:, 1] -= STANDING_TRANS_Y
    if horizontal == "NONE":
        out[:, [0, 2]] = 0.0
    elif horizontal != "ABSOLUTE":
        raise ValueError(f"horizontal must be NONE or ABSOLUTE, not {horizontal!r}")
    return out


FACE_JOINT_OFFSETS_M = {
    "jaw": (0.0, -0.015, 0.030),
    "left_eye_smplhf": (0.0325, 0.035, 0.070),
    "right_eye_smplhf": (-0.0325, 0.035, 0.070),
}

# mannequin-x orders its 54 joints as SMPL-H: 22 body joints, L_Hand, R_Hand
# (at the wrists), then the 30 finger joints in SMPL-X order.
_MANNEQUIN_TO_SMPLX = list(range(22)) + [20, 21] + list(range(25, 55))


def mannequin_asset_path(name: str) -> str:
    """Path of ``mannequin/assets/<name>`` inside the installed mannequin-x.

    Raises:
        FileNotFoundError: the ``mannequin-x`` package is not installed.
    """
    spec = importlib.util.find_spec("mannequin")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The 'mannequin-x' package is not installed; it provides the default "
            "rig's rest skeleton and mesh (pip install --no-deps mannequin-x==0.3.0)."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "assets", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mannequin-x asset missing: {path}")
    return path


def mannequin_to_smplx_index(mannequin_index: int) -> int:
    """SMPL-X joint index a mannequin-x joint index maps to (L/R_Hand → wrists)."""
    return _MANNEQUIN_TO_SMPLX[mannequin_index]


@lru_cache(maxsize=1)
def rest_joints() -> np.ndarray:
    """Rest joint positions of the neutral SMPL-X body at zero shape.

    Returns:
        (55, 3) float64, metres, SMPL-X axes (Y up).  52 joints from the
        mannequin-x calibration; jaw and eyes from :data:`FACE_JOINT_OFFSETS_M`.
    """
    with np.load(mannequin_asset_path("smplx_calibration.npz")) as cal:
        rest54 = np.asarray(cal["joint_rest"], dtype=np.float64)
    out = np.zeros((NUM_JOINTS, 3))
    for mi, si in enumerate(_MANNEQUIN_TO_SMPLX):
        if mi in (22, 23):  # L_Hand / R_Hand duplicate the wrists
            continue
        out[si] = rest54[mi]
    for name, off in FACE_JOINT_OFFSETS_M.items():
        out[JOINT_INDEX[name]] = out[HEAD] + np.asarray(off)
    out.setflags(write=False)
    return out


def forward_kinematics(poses: np.ndarray, trans: np.ndarray,
                       rest: np.ndarray | None = None) -> np.ndarray:
    """World joint positions of SMPL-X poses (no shape blend, no pose correctives).

    Args:
        poses: (T, 165) axis-angle radians, SMPL-X joint order.
        trans: (T, 3) metres, SMPL-X axes.
        rest: (55, 3) rest joints; defaults to :func:`rest_joints`.
    Returns:
        (T, 55, 3) float64 world positions, metres, SMPL-X axes (Y up).
        Standard linear-blend-skinning kinematics (Loper et al., SMPL, 2015):
        ``x_i = R_parent_world (J_i - J_parent) + x_parent``,
        ``x_0 = J_0 + trans``.
    """
    rest = rest_joints() if rest is None else np.asarray(rest, np.float64)
    poses = np.asarray(poses, np.float64)
    T = poses.shape[0]
    local = Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(T, NUM_JOINTS, 3, 3)
    world_r = np.empty_like(local)
    pos = np.empty((T, NUM_JOINTS, 3))
    for j, p in enumerate(PARENTS):
        if p < 0:
            world_r[:, j] = local[:, j]
            pos[:, j] = rest[j] + np.asarray(trans, np.float64)
        else:
            world_r[:, j] = world_r[:, p] @ local[:, j]
            pos[:, j] = np.einsum("tij,j->ti", world_r[:, p], rest[j] - rest[p]) + pos[:, p]
    return pos


def smplx_to_blender(points: np.ndarray) -> np.ndarray:
    """Map SMPL-X axes (x, y, z; Y up) to Blender axes (x, -z, y; Z up)."""
    points = np.asarray(points)
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)
