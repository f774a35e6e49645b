"""glTF 2.0 export of one take (Godot, three.js, Babylon, Unity glTFast, VRM
tools) through Blender's bundled exporter (``export_scene.gltf``).

What the file holds: the rig's armature as a glTF skin, every mesh it deforms
with its shape keys as morph targets, and one animation — the active take
only (``export_animation_mode="ACTIVE_ACTIONS"``, merged into one glTF
animation, starting at time 0 = the take's first frame) — sampled on every scene frame (``export_force_sampling``, no
curve simplification: ``export_optimize_animation_size`` off), with the
face as morph-target weight animation (ARKit / viseme / ``Exp###`` keys).
Y up, metres (glTF's own convention, §3.4 of the spec).  Rigify rigs
export their DEF skeleton (the exporter's ``export_def_bones``: deform bones
re-parented to their nearest deform ancestor, sampled as the controls move them).  Meshes keep their shape
keys (``export_apply`` off: the exporter cannot apply modifiers to meshes with
shape keys).

Binary glTF (``.glb``, one file: what Godot, three.js and glTFast load
directly); written under a temporary name and renamed when complete.  (The
multi-file ``.gltf`` + ``.bin`` form cannot be renamed atomically, and the
embedded ``.gltf`` form is off by default in Blender's exporter.)
"""
from __future__ import annotations

import os

import bpy

from .export_common import (ExportError, export_objects, finish_file, progress_handler, quiet_meshes,
                            restore_meshes, restore_state, save_state, select_only, take_range, target_path,
                            temporary_path)
from .fbx_export import deform_only
from .rig import RigInfo


#: Hide the meshes' modifiers while the exporter steps the frames (as the FBX
#: export does; the skin comes from the vertex groups, the sampled bone
#: transforms are the same).  Shape keys stay on: Blender's glTF exporter
#: leaves muted keys out of the morph targets.
QUIET_MESHES = True
DEFORM_COPY = True


def export_take(rig: RigInfo, action, filepath: str, scene=None, progress=None) -> str:
    """Write take ``action`` on ``rig`` to a binary glTF 2.0 file (``.glb``).

    The scene frame range, active actions and selection are restored after
    export: exporting changes nothing in the .blend.

    Args:
        rig: the rig (armature + the meshes it deforms).
        action: a take action made by :func:`addon.bake.bake_clip`.
        filepath: output path ending in ``.glb``; folders are created.
        progress: optional ``callable(fraction)``, as for the FBX export.
    Returns:
        The absolute path written.
    Raises:
        ExportError: no action, a wrong extension, a folder that cannot be
            created or written, or the exporter failed (nothing is left at
            ``filepath`` then).
    """
    from .bake import activate_take

    if action is None:
        raise ExportError("no take to export: generate or import motion first")
    scene = scene or bpy.context.scene
    filepath = target_path(filepath, (".glb",))
    tmp = temporary_path(filepath)
    objs = export_objects(rig)
    saved = save_state(scene, objs)
    quiet = quiet_meshes([ob for ob in objs if ob.type == "MESH"], mute_keys=False) if QUIET_MESHES else []
    handler = progress_handler(progress, action) if progress is not None else None
    ok, arm = False, rig.armature
    try:
        if handler is not None:
            bpy.app.handlers.frame_change_post.append(handler)
        activate_take(rig, action)
        scene.frame_start, scene.frame_end = take_range(action)
        select_only(objs, arm)
        result = _run_exporter(
            filepath=tmp, export_format="GLB",
            use_selection=True, export_yup=True, export_apply=False,
            export_animations=True, export_animation_mode="ACTIVE_ACTIONS", export_frame_range=True,
            export_force_sampling=True, export_frame_step=1, export_optimize_animation_size=False,
            export_anim_slide_to_zero=True, export_negative_frame="SLIDE", export_current_frame=False,
            export_skins=True, export_def_bones=deform_only(rig), export_leaf_bone=False,
            export_morph=True, export_morph_normal=False, export_morph_animation=True,
            export_bake_animation=False, export_merge_animation="ACTION", export_extras=False,
            export_cameras=False, export_lights=False)
        if "FINISHED" not in result or not os.path.isfile(tmp):
            raise ExportError(f"Blender's glTF exporter did not write {filepath}")
        ok = True
    finally:
        finish_file(tmp, filepath, ok)
        if handler is not None and handler in bpy.app.handlers.frame_change_post:
            bpy.app.handlers.frame_change_post.remove(handler)
        restore_meshes(quiet)
        restore_state(scene, saved)
    return filepath


def _run_exporter(**kwargs):
    try:
        return bpy.ops.export_scene.gltf(**kwargs)
    except (OSError, RuntimeError, TypeError) as exc:
        lines = str(exc).strip().splitlines()
        raise ExportError(f"Blender's glTF exporter failed writing {os.path.basename(kwargs['filepath'])}: "
                          f"{lines[-1] if lines else type(exc).__name__}") from exc
