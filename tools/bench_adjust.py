"""Benchmark: seconds to adjust a 60 s take on the default rig (artist dials,
re-baked from the stored raw output into the take's 323 f-curves).

Prints numbers, asserts nothing.  Run:  .venv/bin/python tools/bench_adjust.py
Uses the BEAT2 capture from ../shared as the "raw output" when present, else
a synthetic clip.
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

from cospeech.addon import bake, raw_store, rig, rig_build, take_adjust  # noqa: E402
from cospeech.model.adjust import PRESETS  # noqa: E402
from cospeech.model.motion import MotionClip  # noqa: E402


def main(repeats: int = 5) -> None:
    if BEAT2_NPZ.exists():
        src, what = MotionClip.load(BEAT2_NPZ).slice(0, 1800), "BEAT2 capture, 60 s"
    else:
        rng = np.random.default_rng(0)
        src = MotionClip(rng.normal(0, .2, (1800, 165)), rng.normal(0, 1, (1800, 100)), rng.normal(0, .1, (1800, 3)))
        what = "synthetic 60 s"
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 30
    arm, _ = rig_build.build_default_rig()
    info = rig.detect_rig(arm)
    take = bake.bake_clip(info, src, 1, name="bench")
    take.action["cospeech_take"] = True
    raw_store.store_raw(take.action, src)
    faces = []
    if "cospeech_face_mesh" in arm:        # the ICT head's ARKit face, as Generate bakes it
        from cospeech.addon import arkit_bake
        faces.append(arkit_bake.bake_arkit(bpy.data.objects[arm["cospeech_face_mesh"]], src, 1,
                                           take.action.name)["action"])
    for a in [take.action] + take.key_actions + faces:
        take_adjust.fingerprint(a)
    print(f"bpy {bpy.app.version_string}; {what}")
    for name in ("CARTOON", "SUBTLE", "NATURAL"):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            res = take_adjust.adjust_take(info, take.action, PRESETS[name], scene)
            times.append(time.perf_counter() - t)
        print(f"adjust 60 s take, preset {name:9s}: median {np.median(times):.3f} s, best {min(times):.3f} s "
              f"({res['written']} f-curves; target <= 0.3 s)")


if __name__ == "__main__":
    main()
