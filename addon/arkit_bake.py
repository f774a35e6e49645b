"""Bake a take's ARKit weights (``model/arkit.py``) onto any mesh whose shape
keys follow ARKit naming (Ready Player Me, VRoid "perfect sync", MetaHuman
proxies, iPhone-captured rigs …), matched through ``model.arkit.canonical``.

Each bake is a new shape-key action (fake user, ``cospeech_arkit_of`` = the
take), so the mesh's earlier animation survives and one undo reverts it.
"""
from __future__ import annotations

import numpy as np

from ..model.arkit import ARKIT_NAMES, BLINKS_PER_MINUTE, arkit_weights, canonical
from . import bake, compat


def arkit_keys(mesh) -> dict[str, str]:
    """``{ARKit name: shape key name}`` of ``mesh`` (first match wins)."""
    key = mesh.data.shape_keys if mesh.type == "MESH" and mesh.data is not None else None
    out: dict[str, str] = {}
    for kb in (key.key_blocks if key is not None else []):
        a = canonical(kb.name)
        if a is not None and a not in out:
            out[a] = kb.name
    return out


def bake_arkit(mesh, clip, frame_start: int, take_name: str, seed: int = 0,
               blink_rate: float = BLINKS_PER_MINUTE) -> dict:
    """Key the ARKit-named shape keys of ``mesh`` from ``clip`` (at the scene rate).

    ``blink_rate``: blinks per minute (the *Blinks* dial).

    Returns:
        dict: ``action`` (the new shape-key action), ``driven`` and
        ``missing`` (sorted ARKit names with / without a key on the mesh).
    Raises:
        ValueError: the mesh has no ARKit-named shape key, or is not editable.
    """
    targets = arkit_keys(mesh)
    if not targets:
        raise ValueError(f"Mesh '{mesh.name}' has no shape keys with ARKit names (jawOpen, eyeBlinkLeft, …)")
    key = mesh.data.shape_keys
    if not (mesh.is_editable and key.is_editable):
        raise ValueError(f"Mesh '{mesh.name}' is linked: make it local to bake its face")
    w = arkit_weights(clip, seed, blink_rate)
    frames = (frame_start + np.arange(clip.num_frames)).astype(np.float32)
    action, slot, bag = compat.new_action(f"{take_name} (ARKit {mesh.name})", "KEY", key.name)
    for a, kname in sorted(targets.items()):
        bake.write_fcurve(bag, f'key_blocks["{kname}"].value', 0, frames, w[:, ARKIT_NAMES.index(a)])
    action.use_fake_user = True
    action["cospeech_arkit_of"] = take_name
    compat.assign_action(key, action, slot)
    return {"action": action, "driven": sorted(targets), "missing": sorted(set(ARKIT_NAMES) - set(targets))}
