"""Non-destructive artist dials on a take (Blender glue for ``model/adjust.py``).

A generated take keeps the model's raw output inside the .blend: a custom
property ``cospeech_raw`` on the take action holding a compressed ``.npz``
(float32 ``poses`` / ``expressions`` / ``trans`` at 30 fps, base64 text:
~1 MB per minute), so it survives save and reopen and edits of keys
elsewhere.  :func:`adjust_take` re-computes every channel from it with the
dials and writes the values into the take's existing f-curves (same frames),
so the adjustment is one undo step of the operator that calls it.

Hand edits are respected: at bake and after every adjustment each f-curve's
values are fingerprinted (CRC-32 of the float32 values, JSON in
``cospeech_crc``); a channel whose values no longer match was edited by
the user and is left alone (reported) unless ``overwrite_edited`` is set.
Frames with a selected key keep their values (the regenerate locks).
Takes without raw output (imported .npz, older versions, and takes over
``bake.RAW_TAKE_SECONDS``, whose extra copy -- ~70 MB for 30 minutes,
twice with Blender's undo step -- would break the long-audio memory
budget) use their keys as the source, and say so.
"""
from __future__ import annotations

import json
import zlib

import numpy as np

from ..model.adjust import Adjustments, adjust
from . import bake, compat
from .bake_target import targets_of
from .raw_store import load_cue, load_raw
CRC = "cospeech_crc"
SETTINGS = "cospeech_adjust"
MODEL_FPS = 30.0


def _crc(values: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(values, np.float32).tobytes())


def _key(fc) -> str:
    return f"{fc.data_path}|{fc.array_index}"


def fingerprint(action) -> None:
    """Record the CRC of every f-curve's values of ``action`` (see module doc)."""
    action[CRC] = json.dumps({_key(fc): _crc(bake.read_keys(fc)[:, 1]) for fc in compat.action_fcurves(action)})


def edited_channels(action) -> set[str]:
    """``data_path|index`` of the f-curves whose values changed since the last fingerprint."""
    try:
        crc = json.loads(str(action.get(CRC, "{}")))
    except ValueError:
        crc = {}
    return {_key(fc) for fc in compat.action_fcurves(action)
            if _key(fc) in crc and _crc(bake.read_keys(fc)[:, 1]) != crc[_key(fc)]}


def adjust_take(info, take, adj: Adjustments, scene, lock_selected: bool = True,
                overwrite_edited: bool = False, only: tuple[int, int] | None = None) -> dict:
    """Re-bake take ``take`` of rig ``info`` from its raw output with dials ``adj``.

    Args:
        info: the rig (:func:`addon.rig.detect_rig`).
        take: a take action (``cospeech_take``) of that rig.
        adj: dial values (clamped).
        lock_selected: frames with a selected key keep their values.
        overwrite_edited: also overwrite channels the user edited by hand.
        only: ``(a, b)`` scene frames: write only these (Regenerate Range
            dials its new frames; the rest keep their keys).
    Returns:
        dict: ``source`` ("raw output" or "keys"), ``written`` (f-curves
        written), ``skipped_edited`` (sorted data paths left alone),
        ``locked`` (number of locked frames), ``closure_unavailable``
        (True when Lip Closure was asked for but the take has no audio cue).
    """
    from .take_keys import locked_frames, take_to_clip

    adj = adj.clamped()
    fps = bake.scene_fps(scene)
    f0, f1 = int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"])
    T = f1 - f0 + 1
    raw = load_raw(take)
    source = "raw output"
    if raw is None:
        source = "keys"
        raw = take_to_clip(info, take, f0, f1, fps)
    src_adj = adj
    if raw.fps != MODEL_FPS:   # σ is given in frames at 30 fps; adjust() works in frames of its clip
        f = raw.fps / MODEL_FPS
        src_adj = Adjustments(**{**adj.to_dict(), "smooth_face": adj.smooth_face * f,
                                 "smooth_body": adj.smooth_body * f})
    cue = load_cue(take)
    new = bake.scene_clip(adjust(raw, src_adj, cue=cue), scene, T)
    locked = locked_frames(take, f0, f1) if lock_selected else set()
    keep = np.zeros(T, bool)
    for f in locked:
        keep[f - f0] = True
    if only is not None:
        keep[:max(0, only[0] - f0)] = True
        keep[max(0, only[1] - f0 + 1):] = True
    actions = []
    for t in targets_of(info, take=take):       # armature, Exp### meshes, ARKit / viseme faces
        act = t.action_of(take)
        if act is not None:
            actions.append((act, {k: v for k, _g, v in t.channels(new, face_seed(take), adj.blink_rate)}))
    written, skipped = 0, set()
    for action, values in actions:
        edited = set() if overwrite_edited else edited_channels(action)
        for fc in list(compat.action_fcurves(action)):   # a face curve may be replaced (_expand)
            v = values.get((fc.data_path, fc.array_index))
            if v is None:
                continue
            if _key(fc) in edited:
                skipped.add(fc.data_path)
                continue
            co = bake.read_keys(fc)
            v = np.asarray(v, np.float32)
            if len(co) == 1 and T > 1 and action.get("cospeech_arkit_of") and not np.all(v == v[0]):
                _expand(action, fc, f0, v, keep, bool(take.get("cospeech_sampled")))   # a constant face key starts moving
                written += 1
                continue
            idx = np.round(co[:, 0]).astype(int) - f0
            ok = (idx >= 0) & (idx < T)
            vals = co[:, 1].copy()
            sel = ok & ~keep[np.clip(idx, 0, T - 1)]
            vals[sel] = np.asarray(v, np.float32)[idx[sel]]
            if not np.array_equal(vals, co[:, 1]):
                bake.write_values(fc, vals)
            written += 1
        fingerprint(action)
    take[SETTINGS] = json.dumps(adj.to_dict())
    return {"source": source, "written": written, "skipped_edited": sorted(skipped), "locked": len(locked),
            "closure_unavailable": adj.closure > 0 and cue is None}


def _expand(action, fc, f0: int, v: np.ndarray, keep: np.ndarray, sampled: bool) -> None:
    """Replace a one-key (constant) face f-curve by one key per frame: ``v``,
    or the old constant on frames in ``keep``."""
    old = float(bake.read_keys(fc)[0, 1])
    vals = np.where(keep, np.float32(old), v).astype(np.float32)
    path, index = fc.data_path, fc.array_index
    bag = compat.action_channelbag(action)
    bag.fcurves.remove(fc)
    bake.write_fcurve(bag, path, index, (f0 + np.arange(len(vals))).astype(np.float32), vals, sampled=sampled)


def face_seed(take) -> int:
    """Seed of the take's procedural face (blinks): a regenerated take keeps its base take's."""
    return int(take.get("cospeech_face_seed", take.get("cospeech_seed", 0)))


def settings_of(take) -> Adjustments | None:
    """The dials last applied to ``take`` (None if never adjusted)."""
    try:
        return Adjustments(**json.loads(str(take[SETTINGS]))) if SETTINGS in take else None
    except (TypeError, ValueError):
        return None
