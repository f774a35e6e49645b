"""Production-length takes: the costs that should follow what the user asked
for, not the take's length.  For a 1-minute and a 5-minute take on the
default rig, through the operators a user presses: Generate, Regenerate Range
of 300 frames in the middle, Export FBX (Unreal), Export glTF, and the size of
the saved .blend before and after the Regenerate Range.  Prints numbers and
the 5-minute / 1-minute ratios; asserts nothing.

Run:  .venv/bin/python tools/bench_long_takes.py [--steps 8]
Speech: ../shared/data/dev_audio/beat2_scott_2_2.wav tiled to length when
present, else the bundled demo clip tiled.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO))
from headless import DEMO_AUDIO, load_package, scene_with_speech  # noqa: E402

RANGE = 300


def _timed(fn, **kw) -> float:
    t = time.perf_counter()
    res = fn(**kw)
    if res != {"FINISHED"}:
        raise SystemExit(f"error: {fn} returned {res}")
    return time.perf_counter() - t


def run_length(seconds: int, wave, tmp: Path, steps: int) -> dict:
    import bpy
    import soundfile as sf
    n = seconds * 16000
    path = tmp / f"speech_{seconds}s.wav"
    sf.write(path, np.tile(wave, int(np.ceil(n / len(wave))))[:n], 16000)
    scene, arm = scene_with_speech(path, 30)
    scene.cospeech.steps = steps
    out = {"generate": _timed(bpy.ops.cospeech.generate)}
    take = arm.animation_data.action
    f0, f1 = int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"])
    blend = tmp / f"take_{seconds}s.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    out["blend_mb"] = os.path.getsize(blend) / 2**20
    mid = (f0 + f1) // 2
    scene.cospeech.regen_start, scene.cospeech.regen_end = mid, mid + RANGE - 1
    scene.cospeech.seed = 7
    out["regenerate"] = _timed(bpy.ops.cospeech.regenerate_range)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    out["blend_regen_mb"] = os.path.getsize(blend) / 2**20
    out["fbx"] = _timed(bpy.ops.cospeech.export_fbx, filepath=str(tmp / f"take_{seconds}s.fbx"), preset="UNREAL")
    out["glb"] = _timed(bpy.ops.cospeech.export_gltf, filepath=str(tmp / f"take_{seconds}s.glb"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    import bpy
    pkg = load_package()
    pkg.register()
    try:
        from cospeech.model.features import load_audio
        src = REPO.parent / "shared" / "data" / "dev_audio" / "beat2_scott_2_2.wav"
        wave = load_audio(src if src.exists() else DEMO_AUDIO)
        tmp = Path(tempfile.mkdtemp())
        print(f"bpy {bpy.app.version_string}; speech {src.name if src.exists() else DEMO_AUDIO.name} tiled; "
              f"steps {args.steps}; Regenerate Range of {RANGE} frames mid-take")
        res = {s: run_length(s, wave, tmp, args.steps) for s in (60, 300)}
        for s, r in res.items():
            print(f"{s // 60} min take: generate {r['generate']:6.2f} s | regenerate {RANGE} frames "
                  f"{r['regenerate']:5.2f} s | FBX {r['fbx']:5.2f} s ({r['fbx'] * 60 / s:4.2f} s per minute) | "
                  f"glTF {r['glb']:5.2f} s ({r['glb'] * 60 / s:4.2f} s per minute) | .blend {r['blend_mb']:6.1f} MB, "
                  f"{r['blend_regen_mb']:6.1f} MB after the regenerate ({r['blend_regen_mb'] / r['blend_mb']:.2f}x)")
        a, b = res[60], res[300]
        print(f"5 min / 1 min: regenerate {b['regenerate'] / a['regenerate']:.2f}x, "
              f"FBX {b['fbx'] / a['fbx']:.2f}x, glTF {b['glb'] / a['glb']:.2f}x, .blend {b['blend_mb'] / a['blend_mb']:.2f}x")
    finally:
        pkg.unregister()


if __name__ == "__main__":
    main()
