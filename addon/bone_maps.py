"""Bone maps from SMPL-X joints to the skeletons animators actually have.

A bone map says, for each bone of a target armature, which SMPL-X joint's
world rotation it follows.  A *source* is ``(joint_a, joint_b, t)``: the
world rotation slerped from joint_a's to joint_b's by ``t`` (0 = joint_a).
Most bones follow one joint (``t = 0``); spine and neck chains with another
bone count than SMPL-X's get the rotation distributed (UE5's five spine bones
over SMPL-X's three, its two neck bones over neck → head).

Conventions (bone names from the public documentation of each):

* **Rigify** — the control rig Blender's bundled Rigify generates from its
  human metarig: body on the FK controls (``upper_arm_fk.L`` …), root motion
  and pelvis rotation on ``torso``, upper spine on ``chest``; the IK/FK
  switches are keyed to FK (see :data:`RIGIFY_FK_SWITCHES`).
* **Mixamo** — ``mixamorig:Hips`` … (any ``prefix:`` is ignored); Ready
  Player Me / Avaturn avatars use these names without prefix, plus
  ``LeftEye`` / ``RightEye``.
* **UE5** — the Unreal Engine 5 Mannequin (Manny / Quinn): ``pelvis``,
  ``spine_01`` … ``spine_05``, ``neck_01``, ``neck_02``, ``clavicle_l`` …
* **VRM** / **VRM0** — VRM 1.0 / 0.x humanoid bone names (``hips``, ``spine``,
  ``chest``, ``upperChest`` …; they differ in the thumb's names) and VRoid
  Studio's ``J_Bip_C_Hips`` … names (eyes: ``leftEye``, ``J_Adj_L_FaceEye``).
  Ties go to the first in :data:`CONVENTIONS` order.

Names are compared side-neutrally (:func:`normalise`): ``_l`` ``.l`` ``.L``
``_L`` ``Left…`` ``L_`` and any ``prefix:`` match, in any case.  Eye
bones follow SMPL-X's ``left_eye_smplhf`` / ``right_eye_smplhf``; an eye
control that a bone aims at (Rigify's ``eye.L`` gaze target) is keyed with
location instead (:mod:`addon.gaze`).

Pure Python; never imports bpy.
"""
from __future__ import annotations

import json
import os
import re

from ..model import skeleton as sk

#: Joints a target must map to be animated at all (body core).
REQUIRED = ("pelvis", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
            "left_hip", "right_hip", "left_knee", "right_knee", "head")

#: Rigify pose-bone custom properties switched to FK (1.0) in every take:
#: the generated limbs default to IK (0.0), which would ignore FK controls.
RIGIFY_FK_SWITCHES = ("upper_arm_parent.L", "upper_arm_parent.R", "thigh_parent.L", "thigh_parent.R")

_FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def _sides(table: dict[str, str], left: str, right: str) -> dict:
    """Expand ``{name pattern with {S}: joint pattern with {side}}`` for both sides."""
    out = {}
    for name, joint in table.items():
        out[name.format(S=left)] = joint.format(side="left")
        out[name.format(S=right)] = joint.format(side="right")
    return out


def _rigify() -> dict[str, str]:
    m = {"torso": "pelvis", "neck": "neck", "head": "head"}
    m.update(_sides({
        "shoulder.{S}": "{side}_collar", "upper_arm_fk.{S}": "{side}_shoulder",
        "forearm_fk.{S}": "{side}_elbow", "hand_fk.{S}": "{side}_wrist",
        "thigh_fk.{S}": "{side}_hip", "shin_fk.{S}": "{side}_knee",
        "foot_fk.{S}": "{side}_ankle", "toe_fk.{S}": "{side}_foot",
        **{f"{'thumb' if f == 'thumb' else 'f_' + f}.0{k}.{{S}}": f"{{side}}_{f}{k}"
           for f in _FINGERS for k in (1, 2, 3)},
    }, "L", "R"))
    return m


def _mixamo() -> dict[str, str]:
    m = {"hips": "pelvis", "neck": "neck", "head": "head"}
    m.update(_sides({
        "{S}shoulder": "{side}_collar", "{S}arm": "{side}_shoulder", "{S}forearm": "{side}_elbow",
        "{S}hand": "{side}_wrist", "{S}upleg": "{side}_hip", "{S}leg": "{side}_knee",
        "{S}foot": "{side}_ankle", "{S}toebase": "{side}_foot", "{S}eye": "{side}_eye_smplhf",
        **{f"{{S}}hand{f}{k}": f"{{side}}_{f}{k}" for f in _FINGERS for k in (1, 2, 3)},
    }, "left", "right"))
    return m


def _ue5() -> dict[str, str]:
    m = {"pelvis": "pelvis", "head": "head"}
    m.update(_sides({
        "clavicle_{S}": "{side}_collar", "upperarm_{S}": "{side}_shoulder",
        "lowerarm_{S}": "{side}_elbow", "hand_{S}": "{side}_wrist", "thigh_{S}": "{side}_hip",
        "calf_{S}": "{side}_knee", "foot_{S}": "{side}_ankle", "ball_{S}": "{side}_foot",
        "FACIAL_{S}_Eye": "{side}_eye_smplhf",   # MetaHuman face bones
        **{f"{f}_0{k}_{{S}}": f"{{side}}_{f}{k}" for f in _FINGERS for k in (1, 2, 3)},
    }, "l", "r"))
    return m


def _vrm(version: int) -> dict[str, str]:
    """VRM humanoid names; the thumb differs: 1.0 has Metacarpal/Proximal/Distal,
    0.x Proximal/Intermediate/Distal (other fingers are the same in both)."""
    m = {"hips": "pelvis", "head": "head",
         "j_bip_c_hips": "pelvis", "j_bip_c_head": "head"}
    table = {
        "{S}shoulder": "{side}_collar", "{S}upperarm": "{side}_shoulder",
        "{S}lowerarm": "{side}_elbow", "{S}hand": "{side}_wrist", "{S}upperleg": "{side}_hip",
        "{S}lowerleg": "{side}_knee", "{S}foot": "{side}_ankle", "{S}toes": "{side}_foot",
        "j_bip_{s}_shoulder": "{side}_collar", "j_bip_{s}_upperarm": "{side}_shoulder",
        "j_bip_{s}_lowerarm": "{side}_elbow", "j_bip_{s}_hand": "{side}_wrist",
        "j_bip_{s}_upperleg": "{side}_hip", "j_bip_{s}_lowerleg": "{side}_knee",
        "j_bip_{s}_foot": "{side}_ankle", "j_bip_{s}_toebase": "{side}_foot",
        "{S}eye": "{side}_eye_smplhf", "j_adj_{s}_faceeye": "{side}_eye_smplhf",
    }
    for f in _FINGERS:
        segs = ("metacarpal", "proximal", "distal") if (f == "thumb" and version == 1) \
            else ("proximal", "intermediate", "distal")
        for k in (1, 2, 3):
            table[f"{{S}}{f}{segs[k - 1]}"] = f"{{side}}_{f}{k}"
            table[f"j_bip_{{s}}_{f}{k}"] = f"{{side}}_{f}{k}"
    for side, S, s in (("left", "left", "l"), ("right", "right", "r")):
        for name, joint in table.items():
            m[name.format(S=S, s=s)] = joint.format(side=side)
    return m


_VRM_SPINE = ("spine", "chest", "upperchest", "j_bip_c_spine", "j_bip_c_chest", "j_bip_c_upperchest")
_VRM_NECK = ("neck", "j_bip_c_neck")
#: convention -> (exact/normalised bone name -> SMPL-X joint, spine chain
#: bottom→top, neck chain bottom→top).  Names are compared by :func:`normalise`.
CONVENTIONS: dict[str, tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]] = {
    "RIGIFY": (_rigify(), ("chest",), ("neck",)),
    "MIXAMO": (_mixamo(), ("spine", "spine1", "spine2"), ("neck",)),
    "UE5": (_ue5(), ("spine_01", "spine_02", "spine_03", "spine_04", "spine_05"),
            ("neck_01", "neck_02")),
    "VRM": (_vrm(1), _VRM_SPINE, _VRM_NECK),
    "VRM0": (_vrm(0), _VRM_SPINE, _VRM_NECK),
}
#: Human-readable convention names (panel, messages).
LABELS = {"RIGIFY": "Rigify", "MIXAMO": "Mixamo", "UE5": "Unreal Engine 5 Mannequin", "VRM": "VRM 1.0 humanoid",
          "VRM0": "VRM 0.x humanoid"}


_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SIDE = {"l": "L", "left": "L", "r": "R", "right": "R"}


def normalise(name: str) -> str:
    """A bone name in the side-neutral form the tables are compared in.

    Any ``prefix:`` is dropped (Mixamo's ``mixamorig:`` / ``mixamorig1:``),
    the rest is split into words (``_ . - space``, camelCase, digits) and
    lower-cased, and one side word is taken out and put in front: ``L|`` or
    ``R|``.  So ``upperarm_l``, ``UpperArm.L``, ``upperArm_L``, ``L_UpperArm``,
    ``LeftUpperArm`` and ``leftupperarm`` all read ``L|upperarm``;
    ``J_Bip_L_UpperArm`` reads ``L|jbipupperarm``; ``DEF-thigh.L`` reads
    ``L|defthigh`` (Rigify's DEF/ORG/MCH bones keep their prefix word, so
    they never match its controls)."""
    words = [w.lower() for w in _TOKEN.findall(name.rsplit(":", 1)[-1])]
    side = ""
    for i in (len(words) - 1, 0) + tuple(range(1, len(words) - 1)):
        if 0 <= i < len(words) and words[i] in _SIDE:
            side = _SIDE[words.pop(i)]
            break
    else:
        for i in (0, len(words) - 1):          # one lower-case word: "lefteye", "lefthandindex1"
            w = words[i] if words else ""
            for pre in ("left", "right"):
                if w.startswith(pre) and len(w) > len(pre):
                    words[i] = w[len(pre):]
                    side = _SIDE[pre]
                    break
            if side:
                break
    return (f"{side}|" if side else "") + "".join(words)


def _chain(bones: list[str], joints: tuple[str, ...]) -> dict[str, tuple[str, str, float]]:
    """Distribute a chain of target bones (bottom→top) over SMPL-X ``joints``:
    bone k of n sits at position k·(len(joints)-1)/(n-1) along the joints
    (one bone: the last joint); returns bone -> (joint_a, joint_b, t)."""
    n, m = len(bones), len(joints)
    out = {}
    for k, b in enumerate(bones):
        p = (m - 1) if n == 1 else k * (m - 1) / (n - 1)
        a = min(int(p), m - 1)
        t = p - a
        out[b] = (joints[a], joints[min(a + 1, m - 1)], round(t, 6))
    return out


def detect(bone_names) -> tuple[str, dict[str, tuple[str, str, float]]]:
    """The convention matching the most of ``bone_names`` and its bone map.

    Args:
        bone_names: the armature's bone names.
    Returns:
        ``(convention, {bone name: (joint_a, joint_b, t)})`` with SMPL-X joint
        names; ``("", {})`` when no convention maps a single bone.
    """
    names = list(bone_names)
    best = ("", {})
    for conv, (table, spine, neck) in CONVENTIONS.items():
        found = {}
        by_key = {}
        for n in names:
            by_key.setdefault(normalise(n), n)
        for key, joint in table.items():
            real = by_key.get(normalise(key))
            if real is not None and real not in found:
                found[real] = (joint, joint, 0.0)
        spine_bones = [by_key[normalise(k)] for k in spine if normalise(k) in by_key]
        neck_bones = [by_key[normalise(k)] for k in neck if normalise(k) in by_key]
        found.update(_chain(spine_bones, ("spine1", "spine2", "spine3")))
        for k, b in enumerate(neck_bones):     # neck_01, neck_02: neck, halfway to head
            found[b] = ("neck", "head", round(k / len(neck_bones), 6))
        found = {k: ((a, a, 0.0) if t == 0.0 else (a, b, t)) for k, (a, b, t) in found.items()}
        if len(found) > len(best[1]):
            best = (conv, found)
    return best


def missing_required(mapping: dict[str, tuple[str, str, float]]) -> list[str]:
    """SMPL-X joints of :data:`REQUIRED` (and a spine) no bone of ``mapping`` follows."""
    have = {a for a, _b, _t in mapping.values()}
    miss = [j for j in REQUIRED if j not in have]
    if not have & {"spine1", "spine2", "spine3"}:
        miss.append("spine")
    return miss


def parse_source(text: str) -> tuple[str, str, float]:
    """``"spine2"`` or ``"spine1>spine2@0.5"`` → ``(joint_a, joint_b, t)``.

    Raises:
        ValueError: unknown joint name or t outside [0, 1].
    """
    m = re.fullmatch(r"\s*(\w+)\s*(?:>\s*(\w+)\s*@\s*([0-9.]+))?\s*", text or "")
    if not m:
        raise ValueError(f"'{text}' is not an SMPL-X joint name (or 'joint_a>joint_b@t')")
    a, b, t = m.group(1), m.group(2) or m.group(1), float(m.group(3) or 0.0)
    for j in (a, b):
        if j not in sk.JOINT_INDEX:
            raise ValueError(f"'{j}' is not an SMPL-X joint name (e.g. left_elbow, spine3)")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"'{text}': t must be within 0–1")
    return a, b, t


def format_source(src: tuple[str, str, float]) -> str:
    """Inverse of :func:`parse_source`."""
    a, b, t = src
    return a if (a == b or t == 0.0) else f"{a}>{b}@{t:g}"


def save_preset(path: str, mapping: dict, convention: str = "CUSTOM") -> str:
    """Write a bone map as JSON (``{"convention", "bones": {bone: source}}``)
    to ``path`` atomically (temp file + rename); returns ``path``.

    Raises:
        OSError: the folder cannot be written.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = {"convention": convention, "bones": {b: format_source(s) for b, s in mapping.items()}}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def load_preset(path: str) -> tuple[str, dict]:
    """Read a bone map written by :func:`save_preset`: ``(convention, mapping)``.

    Raises:
        ValueError: not such a file, or a source that is not an SMPL-X joint.
        OSError: unreadable.
    """
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{os.path.basename(path)} is not a bone map preset: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("bones"), dict):
        raise ValueError(f"{os.path.basename(path)} is not a bone map preset (no 'bones' table)")
    return str(data.get("convention", "CUSTOM")), {str(b): parse_source(str(s))
                                                   for b, s in data["bones"].items()}
