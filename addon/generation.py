"""One generation, split by thread:

1. :func:`prepare_generate` / :func:`addon.regenerate.prepare_regenerate` (main thread) read
   everything needed from bpy — strip, audio, rig, settings, the take's
   current keys — and validate it.  Nothing in the scene changes.
2. :meth:`Job.run` (worker thread or inline) loads the model and samples
   motion.  It touches no bpy data, so Blender stays responsive; it polls
   ``job.cancel`` through the model's progress callback.
3. :meth:`Job.apply` (main thread) bakes the result as new take(s).  Only
   this step writes to the scene, so a cancelled or failed job leaves the
   scene exactly as it was, and one undo step covers the whole generation.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..model.motion import MotionClip
from . import audio as audio_mod
from . import bake, compat, raw_store, rig, rig_build, take_adjust
from .backend import SAMPLE_RATE, features_module, get_generator, is_cuda_error
from .errors import GenerationError
from .take_keys import regenerated_take

MODEL_FPS = 30.0
#: Seeds live in [0, 2**31 - 1): Blender ID properties are int32.
SEED_LIMIT = 2**31 - 1


@dataclass
class Job:
    """Everything a generation needs, read from bpy up front."""

    rig_info: rig.RigInfo | None         # None: build the default rig when applying
    wave: np.ndarray                     # (N,) float32 mono 16 kHz, the heard stretch
    span: audio_mod.AudioSpan
    style: str
    guidance: float
    seeds: list[int]
    steps: int
    device: str
    parts: frozenset
    known: MotionClip | None = None      # regenerate: the take at 30 fps
    known_mask: np.ndarray | None = None  # (T,) bool at 30 fps, True = keep
    # regenerate: the sampled window starts at model frame ``window_start`` of
    # the take; ``full_known`` / ``full_mask`` are the whole take at 30 fps
    full_known: MotionClip | None = None
    full_mask: np.ndarray | None = None
    window_start: int = 0
    base_take: object = None             # regenerate: the take action it starts from
    regen_frames: tuple[int, int] | None = None
    locked_frames: set = field(default_factory=set)
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: float = 0.0
    weights_dir: str | None = None
    results: list = field(default_factory=list)
    cue: np.ndarray | None = None        # Lip Closure cue of the heard audio (30 fps; Generator.closure_cue)
    error: BaseException | None = None
    warning: str = ""
    text: str = ""                       # the line's dialogue text (fresh generation): phones aligned to it
    phones_note: str = ""                # where the phones came from (model.phones.viseme_features)

    # ---------------------------------------------------------- worker side
    def run(self) -> None:
        """Sample one clip per seed (no bpy access).  Sets ``results`` or ``error``.

        A CUDA failure (driver error, out of memory) on a GPU device is
        retried once on the CPU, with a warning for the user.
        """
        try:
            try:
                self._sample_all(self.device)
            except Exception as exc:
                if self.device == "cpu" or self.cancel.is_set() or not is_cuda_error(exc):
                    raise
                self.results.clear()
                self._sample_all("cpu")
                self.warning = f"CUDA failed ({str(exc).splitlines()[0][:120]}); generated on the CPU instead."
            if self.cue is None:   # a generator without the phone-timed cue
                self.cue = features_module().closure_cue(self.wave, SAMPLE_RATE)
            self.progress = 1.0
            self.wave = None   # 115 MB for 30 minutes; the bake does not need it
        except BaseException as exc:  # reported on the main thread
            if type(exc).__name__ == "Cancelled":
                self.cancel.set()
            self.error = exc

    def _sample_all(self, device: str) -> None:
        gen = get_generator(device, self.weights_dir)
        self.warning = getattr(gen, "device_warning", "") or ""
        n = len(self.seeds)
        for i, seed in enumerate(self.seeds):
            def progress(frac, i=i):
                self.progress = (i + frac) / n
                return not self.cancel.is_set()
            clip = gen.generate(self.wave, SAMPLE_RATE, style=self.style, guidance=self.guidance,
                                seed=seed, steps=self.steps, known=self.known,
                                known_mask=self.known_mask, progress=progress, text=self.text or None)
            self.phones_note = getattr(gen, "phones_note", "")
            self.cue = getattr(gen, "closure_cue", None)
            if self.text and "not aligned" in self.phones_note and self.phones_note not in self.warning:
                self.warning = "; ".join(filter(None, [self.warning, self.phones_note]))
            self.results.append((seed, clip))

    def whole_take(self, window: MotionClip) -> MotionClip:
        """Regenerate: the sampled ``window`` put into the whole take (30 fps)."""
        if self.full_known is None:
            return window
        return self.full_known.spliced(window, self.window_start)

    def whole_cue(self) -> np.ndarray | None:
        """Regenerate: the base take's Lip Closure cue with the window's cue in
        its regenerated frames (the window's cue alone covers only the window);
        None when the base take has none.  Fresh takes: the cue as sampled."""
        if self.full_known is None or self.cue is None:
            return self.cue
        base = raw_store.load_cue(self.base_take) if self.base_take is not None else None
        if base is None:
            return None
        out = np.array(base, np.float32)
        lo, hi = self.window_start, min(len(out), self.window_start + len(self.cue))
        new = np.zeros(len(out), bool)
        new[lo:hi] = ~np.asarray(self.full_mask, bool)[lo:hi]   # regenerated frames of the window
        out[new] = self.cue[np.flatnonzero(new) - lo]
        return out

    def _redial(self, context, action, clip: MotionClip) -> None:
        """Regenerated take of an adjusted take: its raw output is the base
        take's raw output with the new frames in, and the base take's dials are
        applied to the regenerated frames only (keys elsewhere stay as they were)."""
        adj = take_adjust.settings_of(self.base_take)
        base_raw = raw_store.load_raw(self.base_take)
        if adj is None or adj.is_identity() or base_raw is None or raw_store.RAW not in action:
            return
        n = min(base_raw.num_frames, clip.num_frames)
        new = ~np.asarray(self.full_mask[:n], bool)                  # True: regenerated frame
        raw_store.store_raw(action, base_raw.slice(0, n).spliced(clip.slice(0, n), 0, new), self.whole_cue())
        # the copy keeps the user's selected (locked) keys; every channel was re-spliced, so "edited" is moot
        take_adjust.adjust_take(self.rig_info, action, adj, context.scene, lock_selected=True,
                                overwrite_edited=True, only=self.regen_frames)

    # ------------------------------------------------------------ main side
    def apply(self, context) -> list:
        """Bake results as new takes; returns the take actions (main thread only).

        All or nothing: if any bake fails part-way, every action, object and
        datablock it made is removed again and the rig plays what it played
        before, then the error is raised.
        """
        if self.error is not None or self.cancel.is_set():
            return []
        before = _snapshot_ids()
        arm = self.rig_info.armature if self.rig_info is not None else None
        playing = (arm.animation_data.action if arm is not None and arm.animation_data else None)
        try:
            return self._apply(context)
        except BaseException:
            _remove_new_ids(before)
            if arm is not None and playing is not None and arm.name in bpy.data.objects:
                compat.assign_action(arm, playing)
            raise

    def _apply(self, context) -> list:
        if self.rig_info is None:
            arm, _ = rig_build.build_default_rig(collection=context.collection)
            context.view_layer.objects.active = arm
            self.rig_info = rig.detect_rig(arm)
        takes = []
        for seed, clip in self.results:
            if self.base_take is None:
                label = f"{self.span.strip_name} · {self.style} · seed {seed}"
                take = bake.bake_clip(self.rig_info, clip, self.span.frame_start, name=label,
                                      scene=context.scene, parts=self.parts,
                                      num_frames=self.span.num_frames)
                action = take.action
            else:
                action = regenerated_take(self, clip, seed, context.scene)
                clip = self.whole_take(clip)
            _record_source(action, self, seed)
            if "face" in self.parts:
                # regenerated takes keep the base take's blink timing (seeded) outside the range
                face_seed = seed if self.base_take is None else int(self.base_take.get("cospeech_seed", seed))
                _bake_faces(self.rig_info, action, clip, context.scene, self.span, face_seed)
                action["cospeech_face_seed"] = face_seed
            if clip.num_frames <= bake.RAW_TAKE_SECONDS * MODEL_FPS:   # longer: the dials read the keys
                raw_store.store_raw(action, clip, self.whole_cue())  # the artist dials re-bake from it
            if self.base_take is not None:
                self._redial(context, action, clip)
            for a in [action] + bake.key_actions_of(action):
                take_adjust.fingerprint(a)
            takes.append(action)
        if takes:
            bake.activate_take(self.rig_info, takes[-1])
        if self.rig_info.kind == "retarget" and self.rig_info.retarget().notes:
            self.warning = "; ".join(filter(None, [self.warning] + self.rig_info.retarget().notes))
        return takes


_ID_COLLECTIONS = ("actions", "objects", "armatures", "meshes", "shape_keys")


def _snapshot_ids() -> dict:
    return {c: set(getattr(bpy.data, c).keys()) for c in _ID_COLLECTIONS}


def _remove_new_ids(before: dict) -> None:
    """Remove datablocks made since :func:`_snapshot_ids` (objects first)."""
    for c in ("objects", "actions", "meshes", "armatures"):
        coll = getattr(bpy.data, c)
        for name in set(coll.keys()) - before[c]:
            coll.remove(coll[name])


def _bake_faces(info: rig.RigInfo, action, clip: MotionClip, scene, span, seed: int) -> None:
    """The rig's visible faces: its meshes with ARKit- or viseme-named shape
    keys (the default rig's ICT head, a character's face) get the take's
    weights (:mod:`addon.arkit_bake`), one shape-key action each; recorded
    on the take as ``cospeech_arkit`` (:func:`addon.arkit_bake.summary`)."""
    from . import arkit_bake
    from .bake_target import face_meshes
    done = []
    mouth = getattr(info.armature, "cospeech_mouth", "AUTO")
    for mesh in face_meshes(info):
        res = arkit_bake.bake_arkit(mesh, bake.scene_clip(clip, scene, span.num_frames), span.frame_start,
                                    action.name, seed, sampled=bool(action.get("cospeech_sampled")), mouth=mouth)
        done.append(arkit_bake.summary(mesh.name, res))
    if done:
        action["cospeech_arkit"] = "; ".join(done)
        action["cospeech_mouth"] = mouth


def _record_source(action, job: Job, seed: int) -> None:
    s = job.span
    action["cospeech_audio"] = s.path
    action["cospeech_audio_t0"] = s.t0
    action["cospeech_audio_t1"] = s.t1
    action["cospeech_strip"] = s.strip_name
    action["cospeech_sound"] = s.sound_name
    action["cospeech_strip_frame"] = s.frame_start
    action["cospeech_seed"] = seed
    action["cospeech_style"] = job.style
    action["cospeech_guidance"] = job.guidance
    action["cospeech_steps"] = job.steps
    if job.text and job.base_take is None:
        action["cospeech_text"] = job.text
    if job.phones_note:
        action["cospeech_phones"] = job.phones_note


def read_span_audio(span: audio_mod.AudioSpan) -> np.ndarray:
    """The heard stretch of the file, mono 16 kHz, zero-padded to the span length.

    A packed sound (``span.sound_name`` with ``Sound.packed_file``) is read
    from the .blend's packed data, so it works when the original file is gone.

    Raises:
        GenerationError: unreadable / unsupported audio (message from the loader).
    """
    features = features_module()
    packed = audio_mod.packed_bytes(span.sound_name)
    try:
        if packed is not None:
            wave = features.load_audio_bytes(packed, os.path.splitext(span.path)[1],
                                             f"packed sound '{span.sound_name}'")
        else:
            wave = features.load_audio(span.path)
    except (features.AudioError, OSError) as exc:
        raise GenerationError(str(exc)) from exc
    a, b = int(round(span.t0 * SAMPLE_RATE)), int(round(span.t1 * SAMPLE_RATE))
    seg = wave[a:b]
    if len(seg) < b - a:
        seg = np.pad(seg, (0, b - a - len(seg)))
    return np.ascontiguousarray(seg, np.float32)


def settings_job_kwargs(settings, seeds=None) -> dict:
    parts = frozenset(settings.parts())
    if not parts:
        raise GenerationError("Nothing to animate: switch on at least one of Face, Body, Hands, "
                              "Lower Body & Root.")
    seed0 = settings.seed
    if seeds is None:   # wrap into the int32 range ID properties hold (seed + i may overflow it)
        seeds = [(seed0 + i) % SEED_LIMIT for i in range(settings.variations)]
    from .prefs import preferences
    prefs = preferences()
    wdir = bpy.path.abspath(prefs.weights_dir) if prefs is not None and prefs.weights_dir else None
    return dict(weights_dir=wdir, style=settings.style, guidance=float(settings.guidance),
                seeds=seeds,
                steps=int(settings.steps), device=settings.device.lower(), parts=parts)


def prepare_generate(context, create_rig: bool = True) -> Job:
    """Validate the scene and read the strip + audio for a fresh generation.

    Raises:
        GenerationError / audio.StripError / rig.RigError with a user message.
    """
    scene = context.scene
    strip = audio_mod.pick_sound_strip(scene)
    span = audio_mod.strip_span(scene, strip)
    ob = scene.cospeech.target or context.active_object
    if ob is not None and ob.type == "ARMATURE":
        info = rig.detect_rig(ob)
    else:
        info = find_rig(scene)
        if info is None and not create_rig:
            raise GenerationError("No SMPL-X or FLAME rig: select one, or allow creating the default rig.")
    kwargs = settings_job_kwargs(scene.cospeech)
    if info is not None:
        rig.check_bakeable(info, kwargs["parts"])
    wave = read_span_audio(span)
    job = Job(info, wave, span, **kwargs)
    job.text = str(getattr(scene.cospeech, "dialogue_text", "") or "").strip()
    return job


def find_rig(scene):
    """First SMPL-X/FLAME rig in the scene (RigInfo) or None.  Other
    characters are only generated onto when chosen (Character field or
    selection), never picked up by themselves."""
    for ob in scene.objects:
        if ob.type == "ARMATURE":
            try:
                info = rig.detect_rig(ob)
            except rig.RigError:
                continue
            if info.kind != "retarget":
                return info
    return None
