"""Regression tests for the bugs of the hardening issue, through the real
operators in real Blender: each drives the flow a user would (no key
selection or state prepared by hand unless the user would make it)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.addon import backend, bake, compat, generation, rig  # noqa: E402
from blender_helpers import add_strip, keys, new_scene, run, snapshot  # noqa: E402

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"


pytestmark = pytest.mark.usefixtures("registered_module")


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory):
    """20 s of real speech: the bundled ARCTIC clip five times over."""
    wave, sr = sf.read(ARCTIC, dtype="float32")
    path = tmp_path_factory.mktemp("audio") / "arctic_x5.wav"
    sf.write(path, np.tile(wave, 5), sr)
    return path


def take_range(action):
    return int(action["cospeech_frame_start"]), int(action["cospeech_frame_end"])


def key_frames(action):
    """Sorted scene frames keyed on the take's f-curves (all curves agree)."""
    frames = {tuple(np.round(co[:, 0]).astype(int)) for co in keys(action).values()}
    assert len(frames) == 1, "f-curves of one take disagree on their frames"
    return np.array(frames.pop())


def changed_in(before, after, a, b):
    """How many f-curves changed on frames a..b."""
    n = 0
    for k, co in before.items():
        inside = (co[:, 0] >= a) & (co[:, 0] <= b)
        n += int(np.any(after[k][inside, 1] != co[inside, 1]))
    return n


# 1 ------------------------------------------------------------------------
def test_regenerate_right_after_generate_changes_the_range():
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    assert run() == {"FINISHED"}
    base = arm.animation_data.action
    before = keys(base)
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 30, 60
    scene.cospeech.seed = 7
    assert run("regenerate_range") == {"FINISHED"}
    new = arm.animation_data.action
    assert new != base
    assert changed_in(before, keys(new), 30, 60) > 50, "Regenerate Range right after Generate changed nothing"


def test_every_frame_locked_is_refused():
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    run()
    for fc in compat.action_fcurves(arm.animation_data.action):   # the user selects all keys (A)
        for kp in fc.keyframe_points:
            kp.select_control_point = True
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 30, 60
    snap = snapshot()
    msg = run("regenerate_range")
    assert "Every frame of 30–60 has a selected key" in msg
    assert snapshot() == snap


# 2 ------------------------------------------------------------------------
@pytest.mark.parametrize("fps,fps_base,n", [(30, 1.0, 249), (30, 1.0, 483), (30, 1.0, 498), (25, 1.0, 415),
                                            (24, 1.0, 199), (30, 1.001, 250), (60, 1.0, 966)])
def test_take_lengths_regenerate(long_speech, fps, fps_base, n):
    scene, arm = new_scene(fps=fps)
    scene.render.fps_base = fps_base
    strip = add_strip(scene, long_speech)
    strip.frame_final_duration = n              # the user trims the strip to n heard frames
    heard = int(strip.frame_final_end) - int(strip.frame_final_start)
    assert heard == n
    assert run() == {"FINISHED"}
    take = arm.animation_data.action
    frames = key_frames(take)
    assert len(frames) == n and frames[0] == 1 and frames[-1] == n and take_range(take) == (1, n)
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = n // 3, n // 2
    assert run("regenerate_range") == {"FINISHED"}
    assert len(key_frames(arm.animation_data.action)) == n


# 3 ------------------------------------------------------------------------
def test_seed_near_int32_limit_with_variations():
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    scene.cospeech.seed = 2**31 - 2
    scene.cospeech.variations = 3
    assert run() == {"FINISHED"}
    takes = bake.takes_of(arm)
    assert [t["cospeech_seed"] for t in takes] == [2**31 - 2, 0, 1]
    assert [bake.take_number(t) for t in takes] == [1, 2, 3]
    scene.cospeech.seed = 2**31 - 1            # clamped by the property to the last seed that wraps cleanly
    assert scene.cospeech.seed == 2**31 - 2


def test_failure_part_way_leaves_scene_unchanged(monkeypatch):
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    run()
    first = arm.animation_data.action
    snap = snapshot()
    real = bake.bake_clip
    calls = []

    def fail_on_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full (injected)")
        return real(*a, **k)

    monkeypatch.setattr(bake, "bake_clip", fail_on_second)
    scene.cospeech.variations = 3
    msg = run()
    assert "Nothing was baked" in msg and "injected" in msg
    assert snapshot() == snap and arm.animation_data.action == first


# 4, 5 ----------------------------------------------------------------------
def test_negative_sound_offset_delays_the_take():
    scene, arm = new_scene()
    strip = add_strip(scene, ARCTIC, frame_start=100)
    strip.sound_offset = -1.0                  # file time 0 plays at frame 130
    assert run() == {"FINISHED"}
    take = arm.animation_data.action
    assert take_range(take)[0] == 130 and key_frames(take)[0] == 130
    assert take["cospeech_audio_t0"] == 0.0


def test_sound_in_trimmed_meta_strip():
    scene, arm = new_scene()
    ed = scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    meta = coll.new_meta("dialogue", 2, 1)
    inner = meta.strips.new_sound("speech", str(ARCTIC), 1, 1)    # 4 s: frames 1–120
    meta.frame_offset_start, meta.frame_offset_end = 30, 30     # the meta is heard on 31–90
    assert (int(meta.frame_final_start), int(meta.frame_final_end)) == (31, 91)
    meta.select = True
    ed.active_strip = meta
    inner.select = False
    assert run() == {"FINISHED"}
    take = arm.animation_data.action
    assert take_range(take) == (31, 90)
    assert abs(take["cospeech_audio_t0"] - 1.0) < 1e-6 and abs(take["cospeech_audio_t1"] - 3.0) < 1e-6


def test_muted_strips_are_not_used():
    scene, arm = new_scene()
    loud = add_strip(scene, ARCTIC, frame_start=1, channel=1)
    muted = add_strip(scene, ARCTIC, frame_start=200, channel=2)   # active and selected ...
    muted.mute = True                                             # ... but muted
    loud.select = True
    assert run() == {"FINISHED"}
    assert take_range(arm.animation_data.action)[0] == 1
    loud.mute = True
    snap = snapshot()
    assert "Every sound strip is muted" in run() and snapshot() == snap
    loud.mute = muted.mute = False
    scene.sequence_editor.channels[1].mute = True                 # a muted channel
    scene.sequence_editor.active_strip = loud
    muted.select = False
    assert run() == {"FINISHED"}
    assert take_range(arm.animation_data.action)[0] == 200


# 6 ------------------------------------------------------------------------
def test_packed_sound_whose_file_is_gone(tmp_path):
    copy = tmp_path / "line_042.wav"
    shutil.copy(ARCTIC, copy)
    scene, arm = new_scene()
    strip = add_strip(scene, copy)
    strip.sound.pack()
    os.remove(copy)
    assert run() == {"FINISHED"}
    first = keys(arm.animation_data.action)
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 20, 50
    assert run("regenerate_range") == {"FINISHED"}
    # the packed audio is the same speech as the file: same seed, same motion as from the file
    scene2, arm2 = new_scene()
    add_strip(scene2, ARCTIC)
    run()
    from_file = keys(arm2.animation_data.action)
    assert all(np.allclose(first[k], from_file[k], atol=1e-5) for k in first)


# 7 ------------------------------------------------------------------------
def _library_with_rig(tmp_path):
    """A character .blend: the default rig in a collection "Character"."""
    scene, arm = new_scene()
    coll = bpy.data.collections.new("Character")
    scene.collection.children.link(coll)
    for ob in list(bpy.data.objects):
        for c in list(ob.users_collection):
            c.objects.unlink(ob)
        coll.objects.link(ob)
    lib = tmp_path / "character.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(lib))
    return lib


def test_linked_rig_is_refused(tmp_path):
    lib = _library_with_rig(tmp_path)
    scene, _ = new_scene(with_rig=False)
    with bpy.data.libraries.load(str(lib), link=True) as (src, dst):
        dst.objects = [n for n in src.objects]
    for ob in dst.objects:
        scene.collection.objects.link(ob)
    arm = next(o for o in dst.objects if o.type == "ARMATURE")
    bpy.context.view_layer.objects.active = arm
    add_strip(scene, ARCTIC)
    snap = snapshot()
    msg = run()
    assert "is linked from" in msg and "library override" in msg.lower()
    assert snapshot() == snap


def test_library_override_rig_keeps_its_take_after_reopen(tmp_path):
    lib = _library_with_rig(tmp_path)
    scene, _ = new_scene(with_rig=False)
    with bpy.data.libraries.load(str(lib), link=True) as (src, dst):
        dst.collections = ["Character"]
    coll = dst.collections[0]
    empty = bpy.data.objects.new("character", None)
    empty.instance_type, empty.instance_collection = "COLLECTION", coll
    scene.collection.objects.link(empty)
    coll.override_hierarchy_create(scene, bpy.context.view_layer, reference=empty, do_fully_editable=True)
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o.override_library is not None)
    bpy.context.view_layer.objects.active = arm
    add_strip(scene, ARCTIC)
    snap = snapshot()
    msg = run()                       # face keys live on the still-linked mesh data
    assert "face shape keys" in msg and "switch off Face" in msg and snapshot() == snap
    scene.cospeech.animate_face = False
    assert run() == {"FINISHED"}
    name = arm.animation_data.action.name
    blend = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o.override_library is not None)
    assert arm.animation_data.action is not None and arm.animation_data.action.name == name
    assert len(compat.action_fcurves(arm.animation_data.action)) > 100


def test_edit_mode_rig_is_refused():
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    bpy.ops.object.mode_set(mode="EDIT")
    snap = snapshot()
    assert "Edit Mode" in run() and snapshot() == snap
    bpy.ops.object.mode_set(mode="OBJECT")


# 8 ------------------------------------------------------------------------
def test_takes_follow_a_renamed_rig_and_numbers_never_repeat():
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    scene.cospeech.variations = 2
    run()
    arm.name = "Hero"
    assert [bake.take_number(t) for t in bake.takes_of(arm)] == [1, 2]
    assert run("delete_take", action=bake.takes_of(arm)[0].name) == {"FINISHED"}
    scene.cospeech.variations = 1
    run()
    assert [bake.take_number(t) for t in bake.takes_of(arm)] == [2, 3]
    scene.cospeech.variations = 8
    run()
    numbers = [bake.take_number(t) for t in bake.takes_of(arm)]
    assert numbers == list(range(2, 12))          # "Take 10" sorts after "Take 9", not after "Take 1"
    assert all(t.name.startswith(f"Take {n} · ") for t, n in zip(bake.takes_of(arm), numbers))


def test_delete_take_gives_back_what_played_before():
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    own, _slot, bag = compat.new_action("my idle", "OBJECT", arm.name)
    fc = bag.fcurves.new('pose.bones["head"].rotation_quaternion', index=1)
    fc.keyframe_points.insert(1, 0.2)
    compat.assign_action(arm, own, _slot)
    run()
    assert arm.animation_data.action != own
    run("delete_take", action=arm.animation_data.action.name)
    assert arm.animation_data.action == own
    # a rig that had nothing goes back to the rest pose, not the deleted take's last pose
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    run()
    info = rig.detect_rig(arm)
    mesh, _n = info.expression_meshes[0]
    run("delete_take", action=arm.animation_data.action.name)
    assert arm.animation_data.action is None
    assert all(tuple(pb.rotation_quaternion) == (1.0, 0.0, 0.0, 0.0) for pb in arm.pose.bones)
    kb = mesh.data.shape_keys.key_blocks
    assert all(kb[bake.exp_key_name(k)].value == 0.0 for k in range(_n))
    assert mesh.data.shape_keys.animation_data is None or mesh.data.shape_keys.animation_data.action is None


# 9 ------------------------------------------------------------------------
def test_fbx_folder_that_cannot_be_made(tmp_path):
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    run()
    blocker = tmp_path / "renders"
    blocker.write_text("a file where the folder should be")
    msg = run("export_fbx", filepath=str(blocker / "shots" / "take.fbx"), preset="UNITY")
    assert "Traceback" not in msg and "folder" in msg.lower() and str(blocker) in msg


@pytest.mark.parametrize("kind", ["garbage", "nan"])
def test_unreadable_audio_messages(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "garbage":
        path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + os.urandom(2000))
    else:
        wave = np.sin(np.linspace(0, 500, 32000)).astype(np.float32)
        wave[1000:1100] = np.nan
        sf.write(path, wave, 16000, subtype="FLOAT")
    scene, arm = new_scene()
    add_strip(scene, path)
    snap = snapshot()
    msg = run()
    assert "Traceback" not in msg
    assert ("not a supported audio file" in msg) if kind == "garbage" else ("NaN" in msg)
    assert snapshot() == snap


# 10 -----------------------------------------------------------------------
def test_weights_out_of_sync_and_replaced(tmp_path):
    api = backend.model_api()
    src = api.DEFAULT_WEIGHTS_DIR
    wdir = tmp_path / "weights"
    shutil.copytree(src, wdir)
    if not (wdir / "cospeech.onnx").is_file() or not (wdir / "cospeech.safetensors").is_file():
        pytest.skip("the bundled model ships without one of its weight files")
    g1 = generation.get_generator("cpu", str(wdir))
    assert generation.get_generator("cpu", str(wdir)) is g1           # cached
    os.utime(wdir / "cospeech.json", ns=(1, 1))                        # weights replaced on disk
    assert generation.get_generator("cpu", str(wdir)) is not g1        # reloaded
    data = bytearray((wdir / "cospeech.safetensors").read_bytes())
    data[-10:] = b"\x00" * 10                                          # safetensors damaged
    (wdir / "cospeech.safetensors").write_bytes(bytes(data))
    with pytest.raises(api.WeightsError, match="disagree"):
        api.Generator.load(str(wdir), backend="onnx")


# interactive path ------------------------------------------------------------
def _drive(runner, ctx, first_event="TIMER"):
    """Feed modal events as Blender's timer would until the worker is done."""
    import time
    seen = [runner.step(ctx, first_event)]
    progress = []
    while seen[-1] != "DONE":
        time.sleep(0.05)
        progress.append(runner.job.progress)
        seen.append(runner.step(ctx, "TIMER"))
    return seen, progress


def test_interactive_path_cancel_then_run():
    from cospeech.operators import generate_ops
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    ctx = bpy.context
    snap = snapshot()
    scene.cospeech.steps = 8
    job = generation.prepare_generate(ctx)
    runner = generate_ops.JobRunner(job)
    runner.start(ctx)
    assert generate_ops.RUNNING["job"] is job
    assert not bpy.ops.cospeech.generate.poll(), "a second generation must wait for the running one"
    seen, _ = _drive(runner, ctx, first_event="ESC")           # the user presses Esc at once
    assert seen[0] == "PASS_THROUGH" and seen[-1] == "DONE"
    result, reports = generate_ops.finish(ctx, job)
    assert result == {"CANCELLED"} and "cancelled" in reports[0][1]
    assert snapshot() == snap and generate_ops.RUNNING["job"] is None
    assert bpy.ops.cospeech.generate.poll()

    job = generation.prepare_generate(ctx)
    runner = generate_ops.JobRunner(job)
    runner.start(ctx)
    seen, progress = _drive(runner, ctx)
    assert "RUNNING" in seen and progress == sorted(progress) and job.progress == 1.0
    result, reports = generate_ops.finish(ctx, job)
    assert result == {"FINISHED"} and reports[-1][1].startswith("Made 1 take(s): Take 1")
    assert arm.animation_data.action["cospeech_take_number"] == 1
    assert generate_ops.RUNNING["job"] is None


def test_fbx_export_reports_progress_and_restores_the_mesh(tmp_path):
    from cospeech.addon import fbx_export
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    run()
    info = rig.detect_rig(arm)
    mesh, _n = info.expression_meshes[0]
    kb = mesh.data.shape_keys.key_blocks
    kb[bake.exp_key_name(3)].mute = True              # the user's own mute
    mods = [(m.name, m.show_viewport) for m in mesh.modifiers]
    ticks = []
    fbx_export.export_take(info, arm.animation_data.action, str(tmp_path / "t.fbx"), "UNITY",
                           progress=ticks.append)
    assert len(ticks) >= 100 and ticks == sorted(ticks) and ticks[-1] == 1.0
    assert [k.name for k in kb if k.mute] == [bake.exp_key_name(3)]
    assert [(m.name, m.show_viewport) for m in mesh.modifiers] == mods


def test_backend_choice_and_warm_up(monkeypatch):
    """No CUDA driver: ONNX on the CPU without importing torch (start-up time);
    with a driver and a CUDA torch (simulated: no GPU here), torch takes CUDA."""
    monkeypatch.setattr(backend, "cuda_driver_present", lambda: False)
    assert backend.choose_backend("auto") == "onnx" and backend.choose_backend("cuda") == "onnx"
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        monkeypatch.setattr(backend, "cuda_driver_present", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert backend.choose_backend("cuda") == "torch"
    monkeypatch.undo()
    assert backend.warm_up() is True
    assert generation.get_generator("auto", None) is generation.get_generator("auto", None)


def test_long_takes_are_sampled_and_still_regenerate(monkeypatch, tmp_path):
    """Takes past bake.SAMPLED_TAKE_SECONDS are stored as f-curve samples (memory),
    past bake.RAW_TAKE_SECONDS without the raw output; both lowered here so a 4 s
    take takes that path."""
    monkeypatch.setattr(bake, "SAMPLED_TAKE_SECONDS", 1.0)
    monkeypatch.setattr(bake, "RAW_TAKE_SECONDS", 1.0)
    scene, arm = new_scene()
    add_strip(scene, ARCTIC)
    assert run() == {"FINISHED"}
    base = arm.animation_data.action
    fcs = compat.action_fcurves(base)
    assert base["cospeech_sampled"] and all(len(fc.keyframe_points) == 0 and len(fc.sampled_points) == 120
                                            for fc in fcs)
    before = keys(base)
    assert all(np.array_equal(co[:, 0], np.arange(1, 121)) for co in before.values())
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 30, 60
    scene.cospeech.seed = 3
    assert run("regenerate_range") == {"FINISHED"}
    after = keys(arm.animation_data.action)
    for k, co in before.items():
        out = (co[:, 0] < 30) | (co[:, 0] > 60)
        assert np.array_equal(after[k][out], co[out])
    assert changed_in(before, after, 30, 60) > 50
    path = tmp_path / "long.blend"
    name = arm.name
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    arm = bpy.data.objects[name]
    bpy.context.view_layer.objects.active = arm
    assert keys(arm.animation_data.action).keys() == after.keys()
    assert run("export_fbx", filepath=str(tmp_path / "long.fbx"), preset="UNREAL") == {"FINISHED"}
    # long takes keep no second (raw) copy: the dials read the samples themselves
    from cospeech.addon import raw_store, take_adjust
    take = arm.animation_data.action
    assert raw_store.load_raw(take) is None
    scene = bpy.context.scene
    scene.cospeech.adjust_mouth = 0.0
    res = take_adjust.adjust_take(rig.detect_rig(arm), take, scene.cospeech.adjustments(), scene)
    assert res["source"] == "keys" and res["written"] > 300
    jaw = np.stack([keys(take)[('pose.bones["jaw"].rotation_quaternion', c)][:, 1] for c in range(4)], 1)
    assert np.abs(jaw - jaw[0]).max() < 1e-5 and len(compat.action_fcurves(take)[0].keyframe_points) == 0
