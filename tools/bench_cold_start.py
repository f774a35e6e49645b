"""Benchmark: the first Generate of a Blender session, 10 s of speech.

Each case runs in a fresh Python process (nothing imported or loaded yet):
  cold       the user presses Generate at once;
  warmed     the add-on's background warm-up (``backend.warm_up``, started
             by a timer 1 s after register) has finished first.
Prints seconds, asserts nothing.  Run:  .venv/bin/python tools/bench_cold_start.py
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time, tempfile
sys.path.insert(0, {tools!r})
import numpy as np, soundfile as sf
from cospeech_cli import DEMO_AUDIO, load_package, scene_with_speech
import bpy
pkg = load_package(); pkg.register()
from cospeech.addon import backend
wave, sr = sf.read(DEMO_AUDIO, dtype="float32")
path = tempfile.mkdtemp() + "/speech_10s.wav"
sf.write(path, np.tile(wave, 3)[: 10 * sr], sr)
scene, _ = scene_with_speech(path, 30)
t = time.perf_counter()
if {warm}:
    backend.warm_up()
warm = time.perf_counter() - t
t = time.perf_counter(); bpy.ops.cospeech.generate(); first = time.perf_counter() - t
t = time.perf_counter(); bpy.ops.cospeech.generate(); second = time.perf_counter() - t
print(f"RESULT {{warm:.2f}} {{first:.2f}} {{second:.2f}}", flush=True)
import os; os._exit(0)   # bpy's audio device can hang in its exit handler (seen with bpy 4.5)
"""


def main() -> None:
    for label, warm in (("cold", False), ("warmed", True)):
        code = CHILD.format(tools=str(REPO / "tools"), warm=warm)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        w, first, second = map(float, [ln for ln in out.splitlines() if ln.startswith("RESULT")][0].split()[1:])
        extra = f" (after a {w:.2f} s background warm-up)" if warm else ""
        print(f"{label:7s}: first Generate {first:.2f} s{extra}; second {second:.2f} s; "
              f"one-off load in the first = {first - second:.2f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
