"""The headless job behind ``tools/cospeech_cli.py`` and ``tools/batch.py``: a
scene with the speech as a sound strip and the rig (the default rig or the
user's character), the same operators the UI runs (Generate, Adjust Take,
Export), the motion as .npz, the .blend, and the previews.

Runs inside a bpy process; the package is imported as ``cospeech`` the way
Blender imports an extension (:func:`load_package`).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".m4a"}
DEMO_AUDIO = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"


def load_package():
    """Import the repository as package ``cospeech`` (as Blender imports an extension)."""
    import importlib.util
    if "cospeech" in sys.modules:
        return sys.modules["cospeech"]
    spec = importlib.util.spec_from_file_location("cospeech", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cospeech"] = mod
    spec.loader.exec_module(mod)
    return mod


def load_character(path: Path, armature: str | None):
    """Bring a character into the scene: a .blend's objects (appended) or an
    FBX (Blender's importer); returns the armature named ``armature`` (or the
    only one).  Raises ValueError with a message otherwise."""
    import bpy

    suffix = path.suffix.lower()
    if not path.is_file():
        raise ValueError(f"character file {path} does not exist")
    if suffix == ".vrm":
        raise ValueError("VRM files need the VRM add-on: import it in Blender and save a .blend, "
                         "then pass that .blend with --character")
    if suffix not in (".blend", ".fbx", ".glb", ".gltf"):
        raise ValueError(f"--character takes a .blend, .fbx, .glb or .gltf file, not {path.name}")
    before = set(bpy.data.objects)
    try:
        if suffix == ".blend":
            with bpy.data.libraries.load(str(path), link=False) as (src, dst):
                dst.objects = list(src.objects)
            for ob in dst.objects:
                if ob is not None:
                    bpy.context.scene.collection.objects.link(ob)
        elif suffix == ".fbx":
            bpy.ops.import_scene.fbx(filepath=str(path))
        elif suffix in (".glb", ".gltf"):
            bpy.ops.import_scene.gltf(filepath=str(path))
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"cannot read character {path.name}: {_last_line(exc)}") from exc
    arms = [ob for ob in set(bpy.data.objects) - before if ob.type == "ARMATURE"]
    if armature is not None:
        match = [ob for ob in arms if ob.name == armature]
        if not match:
            raise ValueError(f"no armature '{armature}' in {path.name}; it has: "
                             + ", ".join(sorted(o.name for o in arms)) or "none")
        return match[0]
    if len(arms) != 1:
        raise ValueError(f"{path.name} has {len(arms)} armatures"
                         + (f" ({', '.join(sorted(o.name for o in arms))}): choose one with --armature"
                            if arms else ""))
    return arms[0]


def scene_with_speech(audio: Path, fps: int = 30, character: Path | None = None,
                      armature: str | None = None):
    """Fresh empty scene at ``fps`` with ``audio`` as the active sound strip
    (frame 1) and the default rig active, or ``character``'s armature as the
    Character to generate onto.  Returns (scene, armature)."""
    import bpy

    from cospeech.addon import compat, rig_build

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    strip = compat.new_sound_strip(scene, Path(audio).stem, str(Path(audio).resolve()), 1, 1)
    strip.select = True
    scene.sequence_editor.active_strip = strip
    if character is not None:
        arm = load_character(Path(character), armature)
        scene.cospeech.target = arm
    else:
        arm, _ = rig_build.build_default_rig()
    bpy.context.view_layer.objects.active = arm
    return scene, arm


def _last_line(exc: BaseException) -> str:
    """The message of ``exc`` without Blender's "Error: " prefix and traceback lines."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text[len("Error: "):] if text.startswith("Error: ") else text


def run_operator(op, what: str, **kwargs) -> None:
    """Call ``bpy.ops`` operator ``op``; its refusal (CANCELLED, or the
    RuntimeError bpy raises for an ERROR report) becomes ``ValueError`` with
    the operator's own message."""
    try:
        res = op(**kwargs)
    except RuntimeError as exc:
        raise ValueError(f"{what}: {_last_line(exc)}") from exc
    if res != {"FINISHED"}:
        raise ValueError(f"{what}: the operator was cancelled ({', '.join(sorted(res))})")


DIALS = ("mouth", "closure", "expression", "head", "gesture", "root", "smooth_face", "smooth_body", "blink_rate")


def dialogue_text(audio: Path, args) -> str:
    """The line's text: ``--text``, else ``--text-file``, else ``NAME.txt`` beside
    ``NAME.wav`` (folder mode's convention, also used for a single file), else "".

    Raises:
        ValueError: ``--text-file`` cannot be read.
    """
    if getattr(args, "text", None):
        return str(args.text)
    path = getattr(args, "text_file", None)
    if path:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ValueError(f"cannot read --text-file {path}: {exc.strerror or exc}") from exc
    beside = Path(audio).with_suffix(".txt")
    return beside.read_text(encoding="utf-8", errors="replace") if beside.is_file() else ""


def generate_one(audio: Path, out_dir: Path, args, batch_name: str | None = None) -> dict:
    """Run the main job on one file; returns the written paths and timings.

    ``batch_name``: batch mode (``tools/batch.py``): outputs are named after
    it, only ``.npz``, ``.fbx`` and (unless ``--no-preview``) the contact
    sheet are written — no ``.blend``, no MP4."""
    import bpy

    from cospeech.addon import rig, take_keys
    from cospeech.model.motion import MotionClip

    scene, arm = scene_with_speech(audio, args.fps, args.character, args.armature)
    if args.root_motion is not None:
        arm.cospeech_root_motion = args.root_motion
    s = scene.cospeech
    s.style, s.seed, s.guidance, s.steps, s.device = args.style, args.seed, args.guidance, args.steps, args.device
    s.dialogue_text = dialogue_text(audio, args)
    t = time.perf_counter()
    run_operator(bpy.ops.cospeech.generate, f"generation failed for {audio.name}")
    seconds = time.perf_counter() - t
    take = arm.animation_data.action
    f0, f1 = int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"])
    scene.frame_start, scene.frame_end = f0, f1
    if args.adjust is not None or any(getattr(args, d) is not None for d in DIALS):
        s.adjust_preset = args.adjust or "NATURAL"        # the preset's values, then single dials
        for d in DIALS:
            if getattr(args, d) is not None:
                setattr(s, f"adjust_{d}", getattr(args, d))
        run_operator(bpy.ops.cospeech.adjust_take, f"adjusting the take failed for {audio.name}")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = batch_name or audio.stem
    paths = {}
    if "fbx" in args.export:
        paths["fbx"] = out_dir / f"{stem}.fbx"
        run_operator(bpy.ops.cospeech.export_fbx, f"FBX export failed for {audio.name}",
                     filepath=str(paths["fbx"]), preset=args.preset)
    if "glb" in args.export:
        paths["glb"] = out_dir / f"{stem}.glb"
        run_operator(bpy.ops.cospeech.export_gltf, f"glTF export failed for {audio.name}",
                     filepath=str(paths["glb"]))
    clip = take_keys.take_to_clip(rig.detect_rig(arm), take, f0, f1, args.fps)
    clip = clip.resample(30.0) if args.fps != 30 else clip
    paths["npz"] = out_dir / f"{stem}.npz"
    MotionClip.save(clip, paths["npz"])
    if batch_name is None:     # saved before the previews: a preview failure never loses it
        paths["blend"] = out_dir / f"{stem}.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(paths["blend"].resolve()), copy=True)
    if not args.no_preview:
        try:
            _previews(scene, arm, take, audio, out_dir, stem, args, batch_name, paths)
        except Exception as exc:   # noqa: BLE001 - outputs above are written; report, never a traceback
            raise PreviewError(f"previews failed ({_last_line(exc)}); written: "
                               + ", ".join(os.path.relpath(p) for p in paths.values()), paths) from exc
    return {"paths": paths, "seconds": seconds, "frames": f1 - f0 + 1, "phones": str(take.get("cospeech_phones", ""))}


class PreviewError(RuntimeError):
    """The take and its files are written, a preview could not be rendered."""

    def __init__(self, message: str, paths: dict):
        super().__init__(message)
        self.paths = paths


def _previews(scene, arm, take, audio: Path, out_dir: Path, stem: str, args, batch_name, paths: dict) -> None:
    """Contact sheet (and, outside batch mode, the MP4 and the face sheet at phone instants)."""
    import preview
    f0, f1 = int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"])
    paths["preview"] = preview.contact_sheet(scene, arm, f0, f1, out_dir / f"{stem}_preview.png")
    if batch_name is None:
        paths["mp4"] = preview.preview_mp4(scene, arm, f0, f1, audio.resolve(),
                                           float(take.get("cospeech_audio_t0", 0.0)), out_dir / f"{stem}_preview.mp4")
        try:
            from cospeech.model.features import load_audio
            preview.phone_sheet(scene, arm, f0, load_audio(audio), args.fps, out_dir / f"{stem}_face_phones.png")
            paths["face_phones"] = out_dir / f"{stem}_face_phones.png"
        except ImportError:
            print("note: pocketsphinx not installed: no face contact sheet at phone instants")


#: Reproducible outputs: the CLI's math runs on one thread (BLAS, OpenMP, ONNX Runtime) and
#: Python's string hashing is fixed (Blender's FBX exporter derives object ids from ``hash()``), so
#: the same seed gives the same bytes on any machine and in batch workers (parallelism comes
#: from files, not threads).
REPRODUCIBLE_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                    "COSPEECH_THREADS": "1", "PYTHONHASHSEED": "0"}


