"""One generation, split by thread:

1. :func:`prepare_generate` / :func:`prepare_regenerate` (main thread) read
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
from scipy.spatial.transform import Rotation

from ..model.motion import MotionClip
from . import audio as audio_mod
from . import bake, compat, rig, take_adjust

MODEL_FPS = 30.0
#: Seeds live in [0, 2**31 - 1): Blender ID properties are int32.
SEED_LIMIT = 2**31 - 1
SAMPLE_RATE = 16000
_GENERATORS: dict = {}
_GENERATORS_LOCK = threading.Lock()


class GenerationError(ValueError):
    """The request cannot run; the message is shown to the user as is."""


def is_cuda_error(exc: BaseException) -> bool:
    """True for errors raised by CUDA / cuDNN / the ONNX Runtime CUDA provider."""
    text = f"{type(exc).__name__}: {exc}"
    return any(k in text for k in ("CUDA", "cuda", "cuDNN", "CUBLAS", "OutOfMemoryError"))


def model_api():
    """The model's public API module (imports torch on first use).

    Raises:
        GenerationError: the model package or its dependencies are missing.
    """
    try:
        from ..model import generate
    except ImportError as exc:
        raise GenerationError(
            f"CoSpeech's model cannot load: {exc}. Install the extension package for your "
            "platform (it bundles PyTorch), or run tools/setup.sh in a source checkout.") from exc
    return generate


def cuda_driver_present() -> bool:
    """True if an NVIDIA CUDA driver library can be loaded (``libcuda.so.1`` /
    ``nvcuda.dll``): without it neither PyTorch nor ONNX Runtime can use a GPU,
    so the ~1.2 s ``import torch`` for ``torch.cuda.is_available()`` is skipped."""
    import ctypes
    import sys
    if sys.platform == "darwin":
        return False
    for name in (("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def choose_backend(device: str) -> str:
    """Backend for a device setting: ONNX Runtime (the packaged runtime, and
    ~1.8x faster than PyTorch on CPU here, see model/MODEL_CARD.md) unless
    a CUDA GPU is wanted and only PyTorch can use it."""
    import importlib.util
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    has_torch = importlib.util.find_spec("torch") is not None
    if not has_ort:
        return "torch" if has_torch else "onnx"     # "onnx" then reports what is missing
    if device in ("auto", "cuda") and has_torch and cuda_driver_present():
        try:
            import onnxruntime
            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                return "onnx"
            import torch
            if torch.cuda.is_available():
                return "torch"
        except Exception:
            pass
    return "onnx"


def get_generator(device: str, weights_dir: str | None = None):
    """Cached :class:`model.generate.Generator` for ``device`` ("auto"/"cpu"/"cuda")
    and ``weights_dir`` (None: the bundled weights).

    Raises:
        model.generate.WeightsError: missing or corrupt weights.
    """
    gen_mod = model_api()
    backend = choose_backend(device)
    # COSPEECH_THREADS: CPU threads of one generation (batch workers set 1; default: all cores)
    threads = int(os.environ["COSPEECH_THREADS"]) if os.environ.get("COSPEECH_THREADS", "").isdigit() else None
    key = (device, backend, weights_dir or "", _weights_signature(weights_dir or gen_mod.DEFAULT_WEIGHTS_DIR),
           threads)
    with _GENERATORS_LOCK:
        if key not in _GENERATORS:
            _GENERATORS[key] = gen_mod.Generator.load(weights_dir or None, device=device, backend=backend,
                                                      threads=threads)
        return _GENERATORS[key]


def _weights_signature(weights_dir) -> tuple:
    """(name, size, mtime) of every file in the weights folder: weights
    replaced on disk are reloaded instead of served from the cache."""
    try:
        entries = sorted(os.scandir(weights_dir), key=lambda e: e.name)
    except OSError:
        return ()
    return tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file())


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
    base_take: object = None             # regenerate: the take action it starts from
    regen_frames: tuple[int, int] | None = None
    locked_frames: set = field(default_factory=set)
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: float = 0.0
    weights_dir: str | None = None
    results: list = field(default_factory=list)
    cue: np.ndarray | None = None        # closure cue of the heard audio (30 fps), for Lip Closure
    error: BaseException | None = None
    warning: str = ""

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
            self.cue = _features_module().closure_cue(self.wave, SAMPLE_RATE)
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
                                known_mask=self.known_mask, progress=progress)
            self.results.append((seed, clip))

    def _redial(self, context, action, clip: MotionClip) -> None:
        """Regenerated take of an adjusted take: its raw output is the base
        take's raw output with the new frames in, and the base take's dials are
        applied to the regenerated frames only (keys elsewhere stay as they were)."""
        adj = take_adjust.settings_of(self.base_take)
        base_raw = take_adjust.load_raw(self.base_take)
        if adj is None or adj.is_identity() or base_raw is None or action.get("cospeech_sampled"):
            return
        n = min(base_raw.num_frames, clip.num_frames)
        new = ~np.asarray(self.known_mask[:n], bool)                 # True: regenerated frame
        pick = lambda a, b: np.where(new[:, None], a[:n], b[:n])    # noqa: E731
        raw = MotionClip(pick(clip.poses, base_raw.poses), pick(clip.expressions, base_raw.expressions),
                         pick(clip.trans, base_raw.trans), clip.fps)
        take_adjust.store_raw(action, raw, self.cue)
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
            arm, _ = rig.build_default_rig(collection=context.collection)
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
                action = _regenerated_take(self, clip, seed, context.scene)
            _record_source(action, self, seed)
            if "face" in self.parts:
                # regenerated takes keep the base take's blink timing (seeded) outside the range
                face_seed = seed if self.base_take is None else int(self.base_take.get("cospeech_seed", seed))
                _bake_faces(self.rig_info, action, clip, context.scene, self.span, face_seed)
                action["cospeech_face_seed"] = face_seed
            if not action.get("cospeech_sampled"):   # long (sampled) takes: the dials read their keys
                take_adjust.store_raw(action, clip, self.cue)      # the artist dials re-bake from it
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
    done = []
    mouth = getattr(info.armature, "cospeech_mouth", "AUTO")
    for mesh in rig.bound_meshes(info.armature):
        if not arkit_bake.face_keys(mesh) or not mesh.is_editable:
            continue
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


def read_span_audio(span: audio_mod.AudioSpan) -> np.ndarray:
    """The heard stretch of the file, mono 16 kHz, zero-padded to the span length.

    A packed sound (``span.sound_name`` with ``Sound.packed_file``) is read
    from the .blend's packed data, so it works when the original file is gone.

    Raises:
        GenerationError: unreadable / unsupported audio (message from the loader).
    """
    features = _features_module()
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


def warm_up(device: str = "auto", weights_dir: str | None = None) -> bool:
    """Pay the first Generate's one-off costs ahead of time (no bpy: safe in a thread).

    Imports the audio stack (``librosa.load`` pulls in scipy.signal and
    numba, ~2 s here), decodes and analyses 0.5 s of generated audio through
    the same functions a Generate uses, and loads the model into the shared
    generator cache (:func:`get_generator`).  Errors are swallowed: a real
    Generate reports them.

    Returns:
        True if everything loaded.
    """
    try:
        import io

        import soundfile as sf
        features = _features_module()
        buf = io.BytesIO()
        tone = 0.1 * np.sin(np.linspace(0.0, 2 * np.pi * 220, SAMPLE_RATE // 2)).astype(np.float32)
        sf.write(buf, tone, SAMPLE_RATE, format="WAV")
        wave = features.load_audio_bytes(buf.getvalue(), ".wav", "warm-up audio")
        features.raw_audio_features(wave, SAMPLE_RATE)
        get_generator(device, weights_dir)
        return True
    except Exception:   # noqa: BLE001 - best effort; Generate reports the real error
        return False


def start_warm_up() -> None:
    """Start :func:`warm_up` in a daemon thread with the add-on preferences'
    weights folder (read here, on the main thread).  Used as a one-shot
    ``bpy.app.timers`` callback after the add-on registers; returns None."""
    from .settings import preferences
    prefs = preferences()
    wdir = bpy.path.abspath(prefs.weights_dir) if prefs is not None and prefs.weights_dir else None
    thread = threading.Thread(target=warm_up, args=("auto", wdir), name="cospeech-warm-up", daemon=True)
    thread.start()
    import atexit   # never quit with the thread inside ONNX Runtime / numba (hangs native exit handlers)
    atexit.register(thread.join, 30.0)
    return None


def _features_module():
    try:
        from ..model import features
    except ImportError as exc:
        raise GenerationError(f"CoSpeech's audio features cannot load: {exc}") from exc
    return features


def _settings_job_kwargs(settings, seeds=None) -> dict:
    parts = frozenset(settings.parts())
    if not parts:
        raise GenerationError("Nothing to animate: switch on at least one of Face, Body, Hands, "
                              "Lower Body & Root.")
    seed0 = settings.seed
    if seeds is None:   # wrap into the int32 range ID properties hold (seed + i may overflow it)
        seeds = [(seed0 + i) % SEED_LIMIT for i in range(settings.variations)]
    from .settings import preferences
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
    kwargs = _settings_job_kwargs(scene.cospeech)
    if info is not None:
        rig.check_bakeable(info, kwargs["parts"])
    wave = read_span_audio(span)
    return Job(info, wave, span, **kwargs)


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


# ------------------------------------------------------------- regenerate
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
    kwargs = _settings_job_kwargs(scene.cospeech, seeds=[scene.cospeech.seed])
    rig.check_bakeable(info, kwargs["parts"])
    locked = locked_frames(take, a, b) if scene.cospeech.lock_selected_keys else set()
    if len(locked) >= b - a + 1:
        raise GenerationError(
            f"Every frame of {a}–{b} has a selected key, and Keep Selected Keys locks those frames: "
            "nothing would change. Deselect the keys (Alt+A in the Graph Editor) or switch off "
            "Keep Selected Keys.")
    wave = read_span_audio(span)
    adjusted = take_adjust.settings_of(take)
    raw = take_adjust.load_raw(take) if adjusted is not None and not adjusted.is_identity() else None
    # an adjusted take in-paints from its raw output (the dials go on afterwards, see Job._apply),
    # so the new frames continue the model's own motion and the dials are never applied twice
    known = (raw.resample(fps) if raw is not None and info.kind != "retarget"
             else take_to_clip(info, take, t_start, t_end, fps))
    # mask at 30 fps: keep frames whose time is outside [a, b] or on a locked frame
    T = _features_module().num_frames(len(wave), SAMPLE_RATE, MODEL_FPS)
    frame_of = t_start + np.arange(T) / MODEL_FPS * fps          # scene frame (float) of model frame
    regen = (frame_of > a - 0.5) & (frame_of < b + 0.5)
    for f in locked:
        regen &= ~(np.abs(frame_of - f) < 0.5 * fps / MODEL_FPS + 1e-6)
    known = known.resample(MODEL_FPS)
    if known.num_frames < T:
        pad = T - known.num_frames
        known = MotionClip(np.pad(known.poses, ((0, pad), (0, 0)), mode="edge"),
                           np.pad(known.expressions, ((0, pad), (0, 0)), mode="edge"),
                           np.pad(known.trans, ((0, pad), (0, 0)), mode="edge"), MODEL_FPS)
    job = Job(info, wave, span, **kwargs)
    job.known, job.known_mask = known, ~regen
    job.base_take, job.regen_frames, job.locked_frames = take, (a, b), locked
    return job


def take_to_clip(info: rig.RigInfo, take, f0: int, f1: int, fps: float) -> MotionClip:
    """The take's keys (hand edits included) at frames f0..f1 as a clip at ``fps``.

    Takes retargeted onto another skeleton are read from the model output
    stored with them (:func:`take_adjust.load_raw`): hand edits there are
    kept by the splice, but do not steer the in-painting.

    Takes carry a key on every frame, so each channel is read with
    ``foreach_get`` and linearly interpolated between keys where the user
    deleted some (``np.interp``; far faster than ``FCurve.evaluate`` per frame
    on long takes, identical on keyed frames)."""
    if info.kind == "retarget":   # keys on another skeleton: read back the model's own output
        raw = take_adjust.load_raw(take)
        if raw is None:
            raise GenerationError(
                f"Take '{take.name}' on '{info.armature.name}' keeps no model output (takes over "
                f"{bake.SAMPLED_TAKE_SECONDS / 60:.0f} minutes, or imported): it cannot be regenerated "
                "on a retargeted character; generate a new take instead.")
        clip = raw.resample(fps)
        idx = np.minimum(np.arange(f1 - f0 + 1), clip.num_frames - 1)
        return MotionClip(clip.poses[idx], clip.expressions[idx], clip.trans[idx], fps)
    frames = np.arange(f0, f1 + 1)
    T = len(frames)
    poses = np.zeros((T, 165))
    trans = np.zeros((T, 3))
    exp = np.zeros((T, 100))
    bag = compat.action_channelbag(take)
    curves = {(fc.data_path, fc.array_index): fc for fc in (bag.fcurves if bag else [])}

    def sample(fc):
        co = bake.read_keys(fc)
        return np.interp(frames, co[:, 0], co[:, 1]) if len(co) else np.zeros(T)

    for bone, joints in info.bone_sources.items():
        path = f'pose.bones["{bone}"].rotation_quaternion'
        if (path, 0) not in curves:
            continue
        q = np.stack([sample(curves[(path, c)]) for c in range(4)], 1)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        rv = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_rotvec()
        j = joints[-1]
        poses[:, 3 * j:3 * j + 3] = rv
    if info.location_bone:
        path = f'pose.bones["{info.location_bone}"].location'
        for c in range(3):
            if (path, c) in curves:
                trans[:, c] = sample(curves[(path, c)]) + info.trans_origin[c]
    names = [n for n in str(take.get("cospeech_key_action", "")).split(",") if n]
    if names and names[0] in bpy.data.actions:
        kbag = compat.action_channelbag(bpy.data.actions[names[0]])
        for fc in (kbag.fcurves if kbag else []):
            key = fc.data_path.split('"')[1] if '"' in fc.data_path else ""
            if key.startswith(rig.EXP_PREFIX) and key[3:].isdigit() and int(key[3:]) < 100:
                exp[:, int(key[3:])] = sample(fc)
    return MotionClip(poses, exp, trans, fps)


def locked_frames(take, a: int, b: int) -> set:
    """Frames in [a, b] that have a selected keyframe on any of the take's f-curves."""
    out = set()
    for fc in compat.action_fcurves(take):
        n = len(fc.keyframe_points)
        if n == 0:
            continue
        sel = np.zeros(n, bool)
        fc.keyframe_points.foreach_get("select_control_point", sel)
        if not sel.any():
            continue
        for f in np.round(bake.read_keys(fc)[sel, 0]).astype(int):
            if a <= f <= b:
                out.add(int(f))
    return out


def _regenerated_take(job: Job, clip: MotionClip, seed: int, scene):
    """Copy the base take and overwrite only the keys on frames in the range
    (minus locked frames) with the new clip; all other keys stay byte-identical."""
    base = job.base_take
    a, b = job.regen_frames
    number = bake.next_take_number(job.rig_info.armature)
    fps = bake.scene_fps(scene)
    t_start = int(base["cospeech_frame_start"])
    n_frames = int(base["cospeech_frame_end"]) - t_start + 1
    new = clip.resample(fps)
    fresh = bake.bake_clip(job.rig_info, new, t_start, name="tmp", scene=scene, parts=job.parts,
                           assign=False, num_frames=n_frames, number=0)
    action = base.copy()
    action.name = f"Take {number} · {base.name.split(' · ')[0]} frames {a}-{b} regenerated · seed {seed}"
    action["cospeech_take_number"] = number
    action["cospeech_prev_action"] = base.name
    fresh_curves = {(fc.data_path, fc.array_index): fc for fc in compat.action_fcurves(fresh.action)}
    _splice(action, fresh_curves, a, b, job.locked_frames)
    _continuous_quaternions(action, a, b)
    key_names = []
    old_keys = [n for n in str(base.get("cospeech_key_action", "")).split(",") if n]
    for old_name, fresh_key in zip(old_keys, fresh.key_actions):
        old = bpy.data.actions.get(old_name)
        if old is None:
            continue
        kcopy = old.copy()
        kcopy.name = action.name + " (face)"
        _splice(kcopy, {(fc.data_path, fc.array_index): fc for fc in compat.action_fcurves(fresh_key)},
                a, b, job.locked_frames)
        key_names.append(kcopy.name)
    for tmp in [fresh.action] + list(fresh.key_actions):
        bpy.data.actions.remove(tmp)
    action["cospeech_key_action"] = ",".join(key_names)
    action["cospeech_regen_of"] = base.name
    action.use_fake_user = True
    return action


def _splice(action, fresh_curves: dict, a: int, b: int, locked: set) -> None:
    for fc in compat.action_fcurves(action):
        src = fresh_curves.get((fc.data_path, fc.array_index))
        if src is None:
            continue
        co, sco = bake.read_keys(fc), bake.read_keys(src)
        lookup = dict(zip(np.round(sco[:, 0]).astype(int).tolist(), sco[:, 1].tolist()))
        values = co[:, 1].copy()
        for i, f in enumerate(np.round(co[:, 0]).astype(int).tolist()):
            if a <= f <= b and f not in locked and f in lookup:
                values[i] = lookup[f]
        if not np.array_equal(values, co[:, 1]):
            bake.write_values(fc, values)


def _continuous_quaternions(action, a: int, b: int) -> None:
    """Flip the sign of regenerated quaternion keys in [a, b] where needed so
    each follows its predecessor's hemisphere (q and -q are one rotation, but
    Blender interpolates channels independently).  Keys outside stay as they are."""
    groups: dict = {}
    for fc in compat.action_fcurves(action):
        if fc.data_path.endswith("rotation_quaternion"):
            groups.setdefault(fc.data_path, {})[fc.array_index] = fc
    for chans in groups.values():
        if len(chans) != 4:
            continue
        cos = [bake.read_keys(chans[c]) for c in range(4)]
        if len({len(co) for co in cos}) != 1:
            continue
        frames = np.round(cos[0][:, 0]).astype(int)
        q = np.stack([co[:, 1] for co in cos], 1)
        flipped = False
        for i in range(1, len(frames)):
            if a <= frames[i] <= b and float(q[i] @ q[i - 1]) < 0:
                q[i] *= -1
                flipped = True
        if flipped:
            for c in range(4):
                bake.write_values(chans[c], q[:, c])
