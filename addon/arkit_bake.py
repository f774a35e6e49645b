"""Bake a take's face onto any mesh whose shape keys follow ARKit naming
(Ready Player Me, VRoid "perfect sync", MetaHuman proxies, ICT-FaceKit,
iPhone-captured rigs …) or carry Oculus visemes (``viseme_aa``, VRChat's
``vrc.v_aa`` …).  Names are matched through :func:`model.arkit.canonical`
and :func:`model.arkit.canonical_viseme`; the weights come from
:func:`model.arkit.arkit_weights` and :func:`model.arkit.viseme_weights`.

Each bake is a new shape-key action (fake user, ``cospeech_arkit_of`` = the
take), so the mesh's earlier animation survives and one undo reverts it.
A shape the take holds constant (most ARKit shapes are 0 today) gets one
key instead of one per frame (30-minute takes: 33 curves x 54,000 samples
less, in the .blend and in the undo copy); Adjust Take expands it again when
a dial makes it move (:func:`addon.take_adjust.adjust_take`).
Keys driven by a driver are left alone (and reported); f-curves of the
mesh's current action on keys this bake does not drive (the user's own
keys) are copied into the new action, so they keep playing.
"""
from __future__ import annotations

import os

import numpy as np

from ..model.arkit import (ARKIT_NAMES, BLINKS_PER_MINUTE, MOUTH_NAMES, VISEME_NAMES, VISEME_TABLE, arkit_weights,
                           canonical, canonical_viseme, viseme_weights)
from . import bake, compat


def _path(key_name: str) -> str:
    return f'key_blocks["{key_name}"].value'


def _driven_by_driver(key) -> set[str]:
    ad = key.animation_data
    return {d.data_path for d in ad.drivers} if ad is not None else set()


#: The character's mouth choice (``Object.cospeech_mouth`` on the armature).
MOUTH_MODES = ("AUTO", "ARKIT", "VISEMES", "BOTH")


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
    drivers = _driven_by_driver(key)
    out: dict[str, tuple[str, str]] = {}
    for kb in key.key_blocks[1:]:          # never the basis
        if _path(kb.name) in drivers:
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


def mouth_choice(keys: dict[str, tuple[str, str]], mode: str = "AUTO") -> str:
    """Which mouth a mesh with face ``keys`` (:func:`all_face_keys`) drives:
    "ARKIT", "VISEMES" or "BOTH".  AUTO: ARKit when it has the ARKit mouth
    (a ``jawOpen`` key), else its visemes; a forced choice the mesh cannot
    follow (visemes on a mesh without any) falls back to what it has.

    Raises:
        ValueError: unknown ``mode``.
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
    choice = mouth_choice(keys, mouth)
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


def _copy_fcurve(bag, fc) -> None:
    n = len(fc.keyframe_points)
    new = bag.fcurves.new(fc.data_path, index=fc.array_index)
    new.keyframe_points.add(n)
    for prop, width, dtype in (("co", 2, np.float32), ("handle_left", 2, np.float32),
                               ("handle_right", 2, np.float32), ("interpolation", 1, np.int32),
                               ("handle_left_type", 1, np.int32), ("handle_right_type", 1, np.int32)):
        buf = np.empty(n * width, dtype)
        fc.keyframe_points.foreach_get(prop, buf)
        new.keyframe_points.foreach_set(prop, buf)
    new.update()


def bake_arkit(mesh, clip, frame_start: int, take_name: str, seed: int = 0,
               blink_rate: float = BLINKS_PER_MINUTE, sampled: bool = False, mouth: str = "AUTO") -> dict:
    """Key the ARKit- and viseme-named shape keys of ``mesh`` from ``clip`` (at the scene rate).

    ``blink_rate``: blinks per minute (the *Blinks* dial); ``sampled``:
    store f-curve samples instead of keyframes (long takes, as the body's);
    ``mouth``: :data:`MOUTH_MODES` — the mouth not chosen (visemes beside an
    ARKit mouth, or the ARKit mouth beside visemes) is keyed at rest (0), so
    earlier animation of those keys cannot double the mouth either.

    Returns:
        dict: ``action`` (the new shape-key action); ``driven`` (sorted ARKit
        names keyed); ``visemes`` (sorted viseme names keyed); ``mouth``
        ("ARKIT", "VISEMES" or "BOTH"); ``rest`` (keys held at 0); ``missing``
        (ARKit names without a key, empty when the mesh has visemes only);
        ``drivers`` (keys with a driver, left alone); ``kept`` (the user's
        f-curves carried over).
    Raises:
        ValueError: the mesh has no ARKit- or viseme-named shape key, or is linked.
    """
    every = all_face_keys(mesh)
    choice = mouth_choice(every, mouth)
    targets = face_keys(mesh, mouth)
    if not targets:
        raise ValueError(f"Mesh '{mesh.name}' has no shape keys with ARKit names (jawOpen, eyeBlinkLeft, …) "
                         "or Oculus viseme names (viseme_aa, …)")
    key = mesh.data.shape_keys
    if not (mesh.is_editable and key.is_editable):
        raise ValueError(f"Mesh '{mesh.name}' is linked: make it local to bake its face")
    values = face_values(targets, clip, seed, blink_rate)
    rest = sorted(set(every) - set(targets))
    values.update({k: np.zeros(clip.num_frames, np.float32) for k in rest})
    frames = (frame_start + np.arange(clip.num_frames)).astype(np.float32)
    prev = key.animation_data.action if key.animation_data is not None else None
    action, slot, bag = compat.new_action(f"{take_name} (ARKit {mesh.name})", "KEY", key.name)
    for kname in sorted(values):
        v = values[kname]
        if v.size and np.all(v == v[0]):    # a shape the take never moves (most of the 52): one key
            bake.write_fcurve(bag, _path(kname), 0, frames[:1], v[:1])
        else:
            bake.write_fcurve(bag, _path(kname), 0, frames, v, sampled=sampled)
    kept = []
    if prev is not None:
        written = {_path(k) for k in values} | {_path(k) for k in every}
        for fc in compat.action_fcurves(prev):
            if fc.data_path not in written:
                _copy_fcurve(bag, fc)
                kept.append(fc.data_path)
        prev.use_fake_user = True
    action.use_fake_user = True
    action["cospeech_arkit_of"] = take_name
    compat.assign_action(key, action, slot)
    arkit = sorted({n for kind, n in targets.values() if kind == "arkit"})
    action["cospeech_mouth"] = choice
    return {"action": action, "driven": arkit, "mouth": choice, "rest": rest,
            "visemes": sorted({n for kind, n in targets.values() if kind == "viseme"}),
            "missing": sorted(set(ARKIT_NAMES) - set(arkit)) if arkit else [],
            "drivers": sorted(_driven_by_driver(key)), "kept": kept}


def summary(mesh_name: str, res: dict) -> str:
    """One line for the report and the take's record."""
    parts = []
    if res["driven"]:
        parts.append(f"{len(res['driven'])}/52 ARKit keys")
    if res["visemes"]:
        parts.append(f"{len(res['visemes'])}/15 visemes")
    line = f"{mesh_name}: " + ", ".join(parts)
    if res.get("rest"):
        line += f"; mouth {res['mouth'].lower()}, {len(res['rest'])} other mouth keys at rest"
    if res["driven"] and res["missing"]:
        line += f" (missing {', '.join(res['missing'][:8])}{' …' if len(res['missing']) > 8 else ''})"
    if res["drivers"]:
        line += f"; {len(res['drivers'])} keys with drivers left alone"
    return line
