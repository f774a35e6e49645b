"""Benchmark the whole operator path (sound strip → audio → model → baked take)
for 10 s and 60 s of speech through ``bpy.ops.cospeech.generate`` (60 s: the
first call, then five warm runs and their median; this machine's timings
vary by up to ±30 % from run to run).

Prints numbers, asserts nothing.  Run:  .venv/bin/python tools/bench_generate.py [--steps 8]
Speech: ../shared/data/dev_audio/beat2_scott_2_2.wav when present, else the
bundled demo clip repeated.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO))
from cospeech_cli import DEMO_AUDIO, load_package, scene_with_speech  # noqa: E402
from model.training.benchmark import peak_rss_mib  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    import bpy
    import soundfile as sf

    pkg = load_package()
    pkg.register()
    try:
        from cospeech.model.features import load_audio
        src = REPO.parent / "shared" / "data" / "dev_audio" / "beat2_scott_2_2.wav"
        wave = load_audio(src if src.exists() else DEMO_AUDIO)
        tmp = Path(tempfile.mkdtemp())
        print(f"bpy {bpy.app.version_string}; speech: {src.name if src.exists() else DEMO_AUDIO.name}; "
              f"steps {args.steps}")
        for seconds in (10, 60):
            n = seconds * 16000
            clip = np.tile(wave, int(np.ceil(n / len(wave))))[:n]
            path = tmp / f"speech_{seconds}s.wav"
            sf.write(path, clip, 16000)
            scene, _ = scene_with_speech(path, 30)
            scene.cospeech.steps = args.steps
            runs = ("first call (loads model)", "warm") if seconds == 10 else \
                ("first 60 s call",) + tuple(f"warm, run {k}" for k in range(1, 6))
            warm = []
            for run in runs:
                t = time.perf_counter()
                bpy.ops.cospeech.generate()
                dt = time.perf_counter() - t
                frames = seconds * 30
                warm += [dt] if run.startswith("warm, run") else []
                print(f"{seconds:3d} s speech, {run:24s}: {dt:6.2f} s end to end, "
                      f"{frames / dt:7.0f} frames/s, {dt * 60 / seconds:6.2f} s per minute of audio")
            if warm:
                print(f"{seconds:3d} s speech, warm: median {np.median(warm):.2f} s, best {min(warm):.2f} s "
                      f"of {len(warm)} runs")
        peak = peak_rss_mib()
        print(f"peak resident memory of this process: {peak:.0f} MiB")
    finally:
        pkg.unregister()


if __name__ == "__main__":
    main()
