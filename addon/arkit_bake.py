"""Bake a take's face onto any mesh whose shape keys follow ARKit naming
(Ready Player Me, VRoid "perfect sync", MetaHuman proxies, ICT-FaceKit,
iPhone-captured rigs …) or carry Oculus visemes (``viseme_aa``, VRChat's
``vrc.v_aa`` …).  Which keys and which values is the mesh's
:class:`addon.bake_target.FaceTarget` (names matched through
:func:`model.arkit.canonical` and :func:`model.arkit.canonical_viseme`,
weights from :func:`model.arkit.arkit_weights` and :func:`model.arkit.viseme_weights`).

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

import numpy as np

from ..model.arkit import ARKIT_NAMES, BLINKS_PER_MINUTE
from . import bake, compat
from .bake_target import FaceTarget, driven_by_driver, key_path


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
    ``mouth``: :data:`addon.bake_target.MOUTH_MODES` — the mouth not chosen (visemes beside an
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
    target = FaceTarget(mesh, mouth)
    if not target.keys:
        raise ValueError(f"Mesh '{mesh.name}' has no shape keys with ARKit names (jawOpen, eyeBlinkLeft, …) "
                         "or Oculus viseme names (viseme_aa, …)")
    key = mesh.data.shape_keys
    if not (mesh.is_editable and key.is_editable):
        raise ValueError(f"Mesh '{mesh.name}' is linked: make it local to bake its face")
    frames = (frame_start + np.arange(clip.num_frames)).astype(np.float32)
    prev = key.animation_data.action if key.animation_data is not None else None
    action, slot, bag = compat.new_action(f"{take_name} (ARKit {mesh.name})", "KEY", key.name)
    written = set()
    for (path, _c), _group, v in target.channels(clip, seed, blink_rate):
        if v.size and np.all(v == v[0]):    # a shape the take never moves (most of the 52): one key
            bake.write_fcurve(bag, path, 0, frames[:1], v[:1])
        else:
            bake.write_fcurve(bag, path, 0, frames, v, sampled=sampled)
        written.add(path)
    kept = []
    if prev is not None:
        written |= {key_path(k) for k in target.every}
        for fc in compat.action_fcurves(prev):
            if fc.data_path not in written:
                _copy_fcurve(bag, fc)
                kept.append(fc.data_path)
        prev.use_fake_user = True
    action.use_fake_user = True
    action["cospeech_arkit_of"] = take_name
    compat.assign_action(key, action, slot)
    arkit = sorted({n for kind, n in target.keys.values() if kind == "arkit"})
    action["cospeech_mouth"] = target.mouth
    return {"action": action, "driven": arkit, "mouth": target.mouth, "rest": target.rest,
            "visemes": sorted({n for kind, n in target.keys.values() if kind == "viseme"}),
            "missing": sorted(set(ARKIT_NAMES) - set(arkit)) if arkit else [],
            "drivers": sorted(driven_by_driver(key)), "kept": kept}


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
