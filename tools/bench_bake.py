"""Benchmark: seconds to bake 60 s of motion at 30 fps onto the default rig
(55 bones x 4 quaternion channels + pelvis location + 100 shape keys).

Prints numbers, asserts nothing.  Run:  .venv/bin/python tools/bench_bake.py
Uses the BEAT2 capture from ../shared when present, else a synthetic clip.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import BEAT2_NPZ, load_extension_package  # noqa: E402

load_extension_package()
import bpy  # noqa: E402
import numpy as np  # noqa: E402

from cospeech.addon import bake, compat, rig, rig_build  # noqa: E402
from cospeech.model.motion import MotionClip  # noqa: E402


def main(repeats: int = 5) -> None:
    if BEAT2_NPZ.exists():
        src = MotionClip.load(BEAT2_NPZ).slice(0, 1800)
        what = "BEAT2 2_scott_0_1_1, first 60 s"
    else:
        rng = np.random.default_rng(0)
        src = MotionClip(rng.normal(0, 0.2, (1800, 165)), rng.normal(0, 1, (1800, 100)),
                         rng.normal(0, 0.1, (1800, 3)))
        what = "synthetic 60 s"
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    arm, _ = rig_build.build_default_rig()
    info = rig.detect_rig(arm)
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        take = bake.bake_clip(info, src, 1, name=f"bench {i}")
        times.append(time.perf_counter() - t)
    n_curves = len(compat.action_fcurves(take.action)) + sum(len(compat.action_fcurves(a)) for a in take.key_actions)
    print(f"bpy {bpy.app.version_string}; clip: {what}; {src.num_frames} frames; {n_curves} f-curves")
    print(f"bake 60 s @ 30 fps: best {min(times):.3f} s, median {sorted(times)[len(times) // 2]:.3f} s "
          f"over {repeats} runs (target <= 0.5 s)")


if __name__ == "__main__":
    main()
