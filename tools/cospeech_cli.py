"""Headless CoSpeech: speech file(s) in, animated rig out — through the same
operators the Blender UI uses (real bpy, no window).

For each speech file it builds a scene with the file as a sound strip and
the default SMPL-X rig, runs ``cospeech.generate``, and writes into the
output folder:

    NAME.blend      the scene (sound strip, rig, take)
    NAME.fbx        the take with the chosen FBX preset
    NAME.npz        the motion in the BEAT2 layout (30 fps)
    NAME_preview.png a contact sheet of frames rendered with Workbench
    NAME_preview.mp4 body | face close-up, the speech as sound track (Blender's FFmpeg)
    NAME_face_phones.png face close-ups at P/B/M (top) and open vowels (bottom),
                     PocketSphinx phones (skipped when pocketsphinx is not installed)

Usage:
    .venv/bin/python tools/cospeech_cli.py SPEECH.wav [--out out/] [--style moderate]
        [--seed 0] [--guidance 2] [--steps 8] [--fps 30] [--preset UNITY] [--no-preview]
    .venv/bin/python tools/cospeech_cli.py FOLDER --out out/ [--workers N | --cluster HOST:PORT]
        # batch (tools/batch.py): recursive, resumable manifest, progress bar
"""
from __future__ import annotations

import argparse
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

    from cospeech.addon import compat, rig

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
        arm, _ = rig.build_default_rig()
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


def generate_one(audio: Path, out_dir: Path, args, batch_name: str | None = None) -> dict:
    """Run the main job on one file; returns the written paths and timings.

    ``batch_name``: batch mode (``tools/batch.py``): outputs are named after
    it, only ``.npz``, ``.fbx`` and (unless ``--no-preview``) the contact
    sheet are written — no ``.blend``, no MP4."""
    import bpy

    from cospeech.addon import generation, rig
    from cospeech.model.motion import MotionClip

    scene, arm = scene_with_speech(audio, args.fps, args.character, args.armature)
    if args.root_motion is not None:
        arm.cospeech_root_motion = args.root_motion
    s = scene.cospeech
    s.style, s.seed, s.guidance, s.steps, s.device = args.style, args.seed, args.guidance, args.steps, args.device
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
    paths["fbx"] = out_dir / f"{stem}.fbx"
    run_operator(bpy.ops.cospeech.export_fbx, f"FBX export failed for {audio.name}",
                 filepath=str(paths["fbx"]), preset=args.preset)
    clip = generation.take_to_clip(rig.detect_rig(arm), take, f0, f1, args.fps)
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
    return {"paths": paths, "seconds": seconds, "frames": f1 - f0 + 1}


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


def main(argv=None) -> int:
    for k, v in REPRODUCIBLE_ENV.items():      # before numpy, onnxruntime or bpy are imported
        os.environ.setdefault(k, v)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("audio", nargs="?", default=str(DEMO_AUDIO),
                   help="speech file or folder of speech files (default: the bundled demo clip)")
    p.add_argument("--out", default=str(REPO / "out" / "demo"), help="output folder")
    p.add_argument("--style", default=None, help="style id (default: the model's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--fps", type=int, default=30, help="scene frame rate (24/25/30/60 …)")
    p.add_argument("--device", default="AUTO", choices=["AUTO", "CPU", "CUDA"])
    p.add_argument("--preset", default="UNITY", choices=["UNITY", "UNREAL", "GENERIC"])
    p.add_argument("--no-preview", action="store_true", help="skip the rendered previews (contact sheets, MP4)")
    p.add_argument("--character", default=None,
                   help="generate onto your character: a .blend or .fbx with a Rigify, Mixamo, Unreal "
                        "Engine 5 or VRM armature (or one with a saved bone map)")
    p.add_argument("--armature", default=None, help="the armature's name when --character has several")
    p.add_argument("--root-motion", default=None, choices=["KEEP", "IN_PLACE"],
                   help="character's hips: travel as generated (KEEP) or stay in place")
    p.add_argument("--adjust", default=None, choices=["SUBTLE", "NATURAL", "BROADCAST", "CARTOON"],
                   help="artist-dial preset applied to the take (README: Adjust Take)")
    p.add_argument("--workers", type=int, default=None,
                   help="folder mode: this many local worker processes (Ray), e.g. the number of cores")
    p.add_argument("--cluster", default=None,
                   help="folder mode: run on the Ray cluster at HOST:PORT (started with `ray start --head`)")
    for d in DIALS:
        unit = ("σ frames at 30 fps" if d.startswith("smooth") else "percent, 0 = as generated" if d == "closure"
                else "blinks per minute of the ARKit face, default 15" if d == "blink_rate"
                else "percent, 100 = as generated")
        p.add_argument(f"--{d.replace('_', '-')}", dest=d, type=float, default=None, help=f"dial: {d} ({unit})")
    args = p.parse_args(argv)

    src = Path(args.audio)
    if not src.exists():
        print(f"error: {src} does not exist", file=sys.stderr)
        return 2
    if (args.workers is not None or args.cluster is not None) and not src.is_dir():
        print("error: --workers / --cluster need a folder of speech files", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if src.is_dir():     # the batch's workers load the package themselves; the driver never needs bpy
        import batch
        if args.style is None:
            args.style = _default_style()
        try:
            return batch.run_batch(src, Path(args.out), args, args.workers, args.cluster)
        except batch.BatchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            if batch._PACKAGE is not None:     # files generated in this process (no --workers)
                batch._PACKAGE.unregister()
    pkg = load_package()
    pkg.register()
    try:
        return _run(args, src)
    finally:
        # The bpy 4.5 module hangs at interpreter exit while Python classes are
        # still registered (seen with a one-operator script): always unregister.
        pkg.unregister()


def _default_style() -> str:
    """The bundled model's default style, read from its config (no torch, no bpy)."""
    import json
    with open(REPO / "model" / "weights" / "cospeech.json") as f:
        return json.load(f)["default_style"]


def _run(args, src: Path) -> int:
    if args.style is None:
        from cospeech.model.generate import DEFAULT_STYLE
        args.style = DEFAULT_STYLE
    out = Path(args.out)
    try:
        info = generate_one(src, out, args)
    except (ValueError, PreviewError) as exc:   # bad input, a refusing operator: a message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"generated {info['frames']} frames from {src.name} in {info['seconds']:.2f} s "
          f"(audio → baked take, {args.steps} steps)")
    for kind, path in info["paths"].items():
        print(f"  {kind:8s} {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != REPRODUCIBLE_ENV["PYTHONHASHSEED"]:
        # string hashing is fixed at interpreter start: run again with the fixed seed
        os.environ.update(REPRODUCIBLE_ENV)
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit(main())
