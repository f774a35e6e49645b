"""Benchmark: seconds per minute of motion for the FBX export of a take on
the default rig (all channels: 55 bones, pelvis location, 100 shape keys).

Prints numbers, asserts nothing.  Run:  .venv/bin/python tools/bench_fbx.py [MINUTES ...]
(default 1 and 5).  Uses the BEAT2 capture from ../shared when present
(looped to the length), else a synthetic clip.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
import tempfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import BEAT2_NPZ, load_extension_package  # noqa: E402

load_extension_package()
import bpy  # noqa: E402
import numpy as np  # noqa: E402

from cospeech.addon import bake, fbx_export, rig, rig_build  # noqa: E402
from cospeech.model.motion import MotionClip  # noqa: E402


def clip_of(minutes: float) -> tuple[MotionClip, str]:
    n = int(minutes * 60 * 30)
    if BEAT2_NPZ.exists():
        src = MotionClip.load(BEAT2_NPZ)
        idx = np.arange(n) % src.num_frames
        return MotionClip(src.poses[idx], src.expressions[idx], src.trans[idx], 30.0), "BEAT2 capture (looped)"
    rng = np.random.default_rng(0)
    return MotionClip(rng.normal(0, .2, (n, 165)), rng.normal(0, 1, (n, 100)), rng.normal(0, .1, (n, 3))), "synthetic"


def main(minutes_list: list[float]) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    arm, mesh = rig_build.build_default_rig()
    info = rig.detect_rig(arm)
    print(f"bpy {bpy.app.version_string}; default rig: {len(mesh.data.vertices)} vertices, "
          f"{len(mesh.data.shape_keys.key_blocks) - 1} shape keys")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in minutes_list:
            clip, what = clip_of(minutes)
            take = bake.bake_clip(info, clip, 1, name=f"bench {minutes} min")
            ticks = []
            t = time.perf_counter()
            path = fbx_export.export_take(info, take.action, f"{tmp}/take.fbx", "UNITY", progress=ticks.append)
            dt = time.perf_counter() - t
            size = Path(path).stat().st_size / 2**20
            print(f"{minutes:g} min ({clip.num_frames} frames, {what}): export {dt:.2f} s = "
                  f"{dt / minutes:.2f} s per minute of motion (target <= 3); {size:.1f} MiB; "
                  f"{len(ticks)} progress reports, last {ticks[-1]:.2f}")


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [1.0, 5.0])
