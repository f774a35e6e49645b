"""Regenerate Range: validate the range and read what in-painting it needs
(the take's audio, its keys or raw output as known frames, the mask) into a
:class:`addon.generation.Job`; the job's apply step splices the new frames
into a copy of the take (:func:`addon.take_keys.regenerated_take`)."""
from __future__ import annotations

import math
import os

import numpy as np

from . import audio as audio_mod
from . import bake, raw_store, rig, take_adjust
from .backend import SAMPLE_RATE, features_module
from .errors import GenerationError
from .generation import MODEL_FPS, Job, read_span_audio, settings_job_kwargs
from .take_keys import locked_frames, take_to_clip


def regen_range(scene) -> tuple[int, int]:
    """Frames to regenerate: the preview range when on, else the panel fields."""
    s = scene.cospeech
    if scene.use_preview_range:
        return int(scene.frame_preview_start), int(scene.frame_preview_end)
    return int(s.regen_start), int(s.regen_end)


def prepare_regenerate(context) -> Job:
    """Validate and read what in-painting a frame range of the active take needs.

    The take's audio comes from the file and times stored on the take when it
    was generated, so the range is regenerated against the same sound even if
    the strip has moved since.

    Raises:
        GenerationError / rig.RigError with a user message.
    """
    scene = context.scene
    info = rig.detect_rig(scene.cospeech.target or context.active_object)
    ad = info.armature.animation_data
    take = ad.action if ad else None
    if take is None or not take.get("cospeech_take"):
        raise GenerationError("The active rig has no CoSpeech take: generate one first.")
    if "cospeech_audio" not in take:
        raise GenerationError(f"Take '{take.name}' was imported, not generated from audio: "
                              "it has no speech to regenerate against.")
    t_start, t_end = int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"])
    a, b = regen_range(scene)
    if b < a:
        raise GenerationError(f"Empty regenerate range {a}–{b}: set the preview range (or Start/End).")
    if b < t_start or a > t_end:
        raise GenerationError(f"Range {a}–{b} is outside take '{take.name}' (frames {t_start}–{t_end}).")
    if a <= t_start and b >= t_end:
        raise GenerationError(f"Range {a}–{b} covers the whole take: use Generate for a new take.")
    a, b = max(a, t_start), min(b, t_end)
    fps = bake.scene_fps(scene)
    span = audio_mod.AudioSpan(str(take["cospeech_audio"]), float(take["cospeech_audio_t0"]),
                               float(take["cospeech_audio_t1"]), t_start, t_end,
                               str(take.get("cospeech_strip", "")), fps,
                               str(take.get("cospeech_sound", "")))
    if not os.path.isfile(span.path) and audio_mod.packed_bytes(span.sound_name) is None:
        raise GenerationError(f"The take's audio file is gone: {span.path}")
    kwargs = settings_job_kwargs(scene.cospeech, seeds=[scene.cospeech.seed])
    rig.check_bakeable(info, kwargs["parts"])
    locked = locked_frames(take, a, b) if scene.cospeech.lock_selected_keys else set()
    if len(locked) >= b - a + 1:
        raise GenerationError(
            f"Every frame of {a}–{b} has a selected key, and Keep Selected Keys locks those frames: "
            "nothing would change. Deselect the keys (Alt+A in the Graph Editor) or switch off "
            "Keep Selected Keys.")
    wave = read_span_audio(span)
    adjusted = take_adjust.settings_of(take)
    raw = raw_store.load_raw(take) if adjusted is not None and not adjusted.is_identity() else None
    # an adjusted take in-paints from its raw output (the dials go on afterwards, see Job._apply),
    # so the new frames continue the model's own motion and the dials are never applied twice
    known = (raw.resample(fps) if raw is not None and info.kind != "retarget"
             else take_to_clip(info, take, t_start, t_end, fps))
    # mask at 30 fps: keep frames whose time is outside [a, b] or on a locked frame
    T = features_module().num_frames(len(wave), SAMPLE_RATE, MODEL_FPS)
    frame_of = t_start + np.arange(T) / MODEL_FPS * fps          # scene frame (float) of model frame
    regen = (frame_of > a - 0.5) & (frame_of < b + 0.5)
    for f in locked:
        regen &= ~(np.abs(frame_of - f) < 0.5 * fps / MODEL_FPS + 1e-6)
    known = known.resample(MODEL_FPS)
    if known.num_frames < T:
        known = known.held(T)
    m0, m1 = model_window(regen, fps)
    window = wave[int(round(m0 / MODEL_FPS * SAMPLE_RATE)):int(round(m1 / MODEL_FPS * SAMPLE_RATE))]
    m1 = m0 + features_module().num_frames(len(window), SAMPLE_RATE, MODEL_FPS)   # what the model makes of it
    keep = np.r_[~regen, np.ones(max(0, m1 - T), bool)]
    if m1 > known.num_frames:
        known = known.held(m1)
    job = Job(info, window, span, **kwargs)
    job.known, job.known_mask = known.slice(m0, m1), keep[m0:m1]
    job.full_known, job.full_mask, job.window_start = known.slice(0, T), ~regen, m0
    job.base_take, job.regen_frames, job.locked_frames = take, (a, b), locked
    return job


#: Model frames of context kept on each side of a regenerated range (one
#: sampling window, ``model.generate``: 4 s): the in-painting sees the motion
#: and the speech around the range, and nothing farther away, so its cost
#: follows the range, not the take.
CONTEXT_FRAMES = 120


def model_window(regen: np.ndarray, fps: float) -> tuple[int, int]:
    """Model frames ``[m0, m1)`` (30 fps) to sample for a regenerated mask.

    The range plus :data:`CONTEXT_FRAMES` each side, cut to the take; ``m0``
    falls on a frame that is also a scene frame (a multiple of
    ``30 / gcd(30, fps)``), so the window bakes onto whole scene frames.  A
    scene rate that is not a whole number (29.97) samples the whole take.
    """
    T = len(regen)
    idx = np.flatnonzero(regen)
    if not len(idx) or abs(fps - round(fps)) > 1e-6:
        return 0, T
    step = int(MODEL_FPS) // math.gcd(int(MODEL_FPS), int(round(fps)))
    m0 = max(0, int(idx[0]) - CONTEXT_FRAMES) // step * step
    m1 = min(T, int(idx[-1]) + 1 + CONTEXT_FRAMES)
    return m0, m1
