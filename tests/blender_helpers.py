"""Helpers for tests that drive the add-on in real Blender (bpy): a fresh
scene with the default rig, a sound strip, what must stay unchanged, and
running an operator the way a button does (ERROR reports become strings)."""
from __future__ import annotations

import bpy

from conftest import load_extension_package

load_extension_package()
from cospeech.addon import bake, compat, rig_build  # noqa: E402


def new_scene(fps=30, with_rig=True):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    arm = None
    if with_rig:
        arm, _ = rig_build.build_default_rig()
        bpy.context.view_layer.objects.active = arm
    s = scene.cospeech
    s.steps, s.seed, s.variations = 2, 0, 1
    return scene, arm


def add_strip(scene, path, frame_start=1, channel=1):
    strip = compat.new_sound_strip(scene, "speech", str(path), channel, frame_start)
    strip.select = True
    scene.sequence_editor.active_strip = strip
    return strip


def snapshot():
    """What a failed / cancelled operation must leave unchanged."""
    return (sorted(a.name for a in bpy.data.actions), sorted(o.name for o in bpy.data.objects),
            {o.name: (o.animation_data.action.name if o.animation_data and o.animation_data.action else None)
             for o in bpy.data.objects})


def run(op="generate", **kw):
    try:
        return getattr(bpy.ops.cospeech, op)(**kw)
    except RuntimeError as exc:   # bpy turns ERROR reports into RuntimeError
        return str(exc)


def keys(action):
    return {(fc.data_path, fc.array_index): bake.read_keys(fc) for fc in compat.action_fcurves(action)}
