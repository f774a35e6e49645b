"""Benchmark: seconds to retarget 60 s of motion onto a 60-bone character
(the UE5 Mannequin layout with twist bones; 55 bones mapped, fingers
included) and bake it as a take.

Prints numbers, asserts nothing.  Run:  .venv/bin/python tools/bench_retarget.py
Source: the BEAT2 capture from ../shared when present, else a synthetic clip.
Reports the rig probe (run once per generation), the numpy transfer, and the
whole bake (transfer + writing the f-curves with ``foreach_set``).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import BEAT2_NPZ, load_extension_package  # noqa: E402

load_extension_package()
import bpy  # noqa: E402
import numpy as np  # noqa: E402

import retarget_rigs as rr  # noqa: E402
from cospeech.addon import bake, retarget, rig  # noqa: E402
from cospeech.model.motion import MotionClip  # noqa: E402


def main(repeats: int = 5) -> None:
    if BEAT2_NPZ.exists():
        src, what = MotionClip.load(BEAT2_NPZ).slice(0, 1800), "BEAT2 capture, 60 s"
    else:
        rng = np.random.default_rng(0)
        src = MotionClip(rng.normal(0, .2, (1800, 165)), np.zeros((1800, 100)), rng.normal(0, .1, (1800, 3)))
        what = "synthetic 60 s"
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 30
    ob, _ = rr.build("Hero", rr.ue5_bones(), a_pose=45, rolls=True, fbx_axes=True)
    print(f"source: {what} ({src.num_frames} frames); character: UE5 Mannequin layout "
          f"(A-pose, rolled bones, FBX axes), {len(ob.data.bones)} bones")
    probe, transfer, total = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        info = rig.detect_rig(ob)
        rt = retarget.prepare(ob, info.mapping, info.convention)
        probe.append(time.perf_counter() - t)
        t = time.perf_counter()
        n = sum(1 for _ in rt.channels(src, bake.ALL_PARTS))
        transfer.append(time.perf_counter() - t)
        info = rig.detect_rig(ob)
        t = time.perf_counter()
        take = bake.bake_clip(info, src, 1, name="bench")
        total.append(time.perf_counter() - t)
        for a in [take.action] + take.key_actions:
            bpy.data.actions.remove(a)
    print(f"mapped bones: {len(rt.bones)}, f-curves: {n}")
    print(f"rig probe:            {np.median(probe):.3f} s (median of {repeats})")
    print(f"transfer (numpy):     {np.median(transfer):.3f} s")
    print(f"bake total (probe + transfer + f-curves): {np.median(total):.3f} s "
          f"= {src.num_frames / np.median(total):,.0f} frames/s")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)
