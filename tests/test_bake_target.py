"""Bake targets (addon/bake_target.py): one description of which clip channels
key which IDs, used by Generate, take switching, Adjust Take and the face bake
on the default rig (armature + Exp### mesh + ICT head), driven as a user does."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.addon import bake, bake_target, compat, raw_store, rig  # noqa: E402
from cospeech.model.arkit import ARKIT_NAMES, arkit_weights  # noqa: E402
from blender_helpers import add_strip, new_scene, run  # noqa: E402

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"


pytestmark = pytest.mark.usefixtures("registered_module")


def _values(fc, frames):
    return np.array([fc.evaluate(f) for f in frames])


def test_every_target_follows_generate_switch_and_adjust():
    scene, _ = new_scene(with_rig=False)
    add_strip(scene, ARCTIC)
    scene.cospeech.variations = 2
    assert run() == {"FINISHED"}
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    info = rig.detect_rig(arm)
    first, second = bake.takes_of(arm)
    targets = bake_target.targets_of(info, take=second)
    assert [t.kind for t in targets] == ["armature", "expressions", "face"]
    face = targets[2]
    assert face.mesh.name == arm["cospeech_face_mesh"] and face.mouth == "ARKIT"
    # every target plays the second take after Generate, and the first after switching
    for take in (second, first):
        if take is first:
            assert run("set_take", action=first.name) == {"FINISHED"}
        for t in bake_target.targets_of(info, take=take):
            act = t.action_of(take)
            assert act is not None and t.id_data.animation_data.action == act, (t.kind, take.name)
    # the face target's keys carry the take's learned ARKit mouth
    raw = raw_store.load_raw(first)
    assert raw.arkit_mouth is not None and raw.arkit_mouth[:, 3].max() > 0.05     # jawOpen moves
    f0, f1 = int(first["cospeech_frame_start"]), int(first["cospeech_frame_end"])
    frames = np.arange(f0, f1 + 1)
    fcs = {fc.data_path: fc for fc in compat.action_fcurves(face.action_of(first))}
    jaw = _values(fcs['key_blocks["jawOpen"].value'], frames)
    want = arkit_weights(bake.scene_clip(raw, scene, len(frames)), seed=int(first["cospeech_face_seed"]))
    assert np.allclose(jaw, want[:, ARKIT_NAMES.index("jawOpen")], atol=1e-3)     # the raw output is float16
    # Adjust Take (Mouth 50 %) reaches the same keys through the same target
    scene.cospeech.adjust_mouth = 50.0
    assert run("adjust_take") == {"FINISHED"}
    jaw_half = _values(fcs['key_blocks["jawOpen"].value'], frames)
    assert np.allclose(jaw_half, np.clip(want[:, ARKIT_NAMES.index("jawOpen")] * 0.5, 0, 1), atol=2e-3)
    # a take without its stored output (long or imported) reads the learned mouth back from the face keys
    from cospeech.addon.take_keys import take_to_clip
    del first[raw_store.RAW]
    back = take_to_clip(info, first, f0, f1, bake.scene_fps(scene))
    assert back.arkit_mouth is not None
    assert np.allclose(back.arkit_mouth[:, 3], jaw_half, atol=1e-5)          # jawOpen, as keyed
