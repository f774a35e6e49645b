"""Headless CoSpeech: speech file(s) in, animated rig out — through the same
operators the Blender UI uses (real bpy, no window).

For each speech file it builds a scene with the file as a sound strip and
the default SMPL-X rig, runs ``cospeech.generate``, and writes into the
output folder:

    NAME.blend      the scene (sound strip, rig, take)
    NAME.fbx        the take with the chosen FBX preset (--export fbx, the default)
    NAME.glb        the take as binary glTF 2.0 (--export glb, or fbx,glb for both)

With the line's text (--text "…", --text-file F, or NAME.txt beside NAME.wav)
the mouth is timed by the text's phones aligned to the speech (PocketSphinx);
where they do not match, by the decoded phones (said in the output).
    NAME.npz        the motion in the BEAT2 layout (30 fps)
    NAME_preview.png a contact sheet of frames rendered with Workbench
    NAME_preview.mp4 body | face close-up, the speech as sound track (Blender's FFmpeg)
    NAME_face_phones.png face close-ups at P/B/M (top) and open vowels (bottom),
                     PocketSphinx phones (skipped when pocketsphinx is not installed)

Usage:
    .venv/bin/python tools/cospeech_cli.py SPEECH.wav [--out out/] [--style moderate]
        [--seed 0] [--guidance 2] [--steps 8] [--fps 30] [--preset UNITY] [--export fbx,glb] [--no-preview]
    .venv/bin/python tools/cospeech_cli.py FOLDER --out out/ [--workers N | --cluster HOST:PORT]
        # batch (tools/batch.py): recursive, resumable manifest, progress bar
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from headless import (AUDIO_EXT, DEMO_AUDIO, DIALS, REPO, REPRODUCIBLE_ENV, PreviewError,  # noqa: F401,E402
                      generate_one, load_package, scene_with_speech)


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
    p.add_argument("--text", default=None,
                   help="the line's dialogue text: phones aligned to it instead of decoded (English)")
    p.add_argument("--text-file", default=None,
                   help="read the dialogue text from this file (folder mode: NAME.txt beside NAME.wav)")
    p.add_argument("--export", default="fbx", type=_export_kinds,
                   help="comma-separated engine files to write: fbx, glb (default: fbx)")
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
    if src.is_dir() and (args.text or args.text_file):
        print("error: --text / --text-file name one line: in folder mode put NAME.txt beside NAME.wav", file=sys.stderr)
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


def _export_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in ("fbx", "glb")]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"--export takes fbx, glb or both (fbx,glb), not {text!r}")
    return kinds


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
          f"(audio → baked take, {args.steps} steps)" + (f"; {info['phones']}" if info.get("phones") else ""))
    for kind, path in info["paths"].items():
        print(f"  {kind:8s} {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != REPRODUCIBLE_ENV["PYTHONHASHSEED"]:
        # string hashing is fixed at interpreter start: run again with the fixed seed
        os.environ.update(REPRODUCIBLE_ENV)
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit(main())
