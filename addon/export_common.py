"""What the take exporters (FBX, glTF) share: the scene state they change
and give back, quieter meshes while the exporter bakes, progress, and
writing the file atomically (a temporary file in the target folder, renamed
when the exporter succeeded), so a failure never leaves a half-written file.
"""
from __future__ import annotations

import os

import bpy


class ExportError(RuntimeError):
    """The take cannot be exported; the message says why."""


def target_path(filepath: str, extensions: tuple[str, ...]) -> str:
    """Absolute output path, its folder created and writable.

    Raises:
        ExportError: wrong extension, a folder that cannot be created or written.
    """
    filepath = os.path.abspath(bpy.path.abspath(filepath))
    if not filepath.lower().endswith(extensions):
        raise ExportError(f"{os.path.basename(filepath)}: the file name must end with {' or '.join(extensions)}")
    try:
        os.makedirs(os.path.dirname(filepath), exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create the folder for {filepath}: {exc.strerror or exc}") from exc
    if not os.access(os.path.dirname(filepath), os.W_OK):
        raise ExportError(f"Cannot write to {os.path.dirname(filepath)}: permission denied")
    return filepath


def temporary_path(filepath: str) -> str:
    """A hidden sibling of ``filepath`` with the same extension (the exporters
    decide the format by it)."""
    folder, name = os.path.split(filepath)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.cospeech-{os.getpid()}{ext}")


def finish_file(tmp: str, filepath: str, ok: bool) -> None:
    """Rename ``tmp`` onto ``filepath`` when ``ok``, else remove it."""
    if ok and os.path.isfile(tmp):
        os.replace(tmp, filepath)
    elif os.path.exists(tmp):
        os.remove(tmp)


def export_objects(rig) -> list:
    """The rig's armature and every mesh it deforms (children and Armature-modifier meshes)."""
    from .rig import bound_meshes
    arm = rig.armature
    objs = [arm] + [m for m, _ in rig.expression_meshes]
    return objs + [m for m in bound_meshes(arm) if m not in objs]


def take_range(action) -> tuple[int, int]:
    return (int(action.get("cospeech_frame_start", int(action.frame_range[0]))),
            int(action.get("cospeech_frame_end", int(action.frame_range[1]))))


def select_only(objs, active) -> None:
    view_layer = bpy.context.view_layer
    for ob in view_layer.objects:
        ob.select_set(False)
    for ob in objs:
        ob.select_set(True)
    view_layer.objects.active = active


def quiet_meshes(meshes, mute_keys: bool = True) -> list:
    """Disable modifiers (viewport) and, with ``mute_keys``, mute the shape
    keys of ``meshes``; returns what to restore."""
    saved = []
    for ob in meshes:
        if not ob.is_editable:
            continue
        for mod in ob.modifiers:
            saved.append((mod, "show_viewport", mod.show_viewport))
            mod.show_viewport = False
        key = ob.data.shape_keys if ob.data is not None else None
        if mute_keys and key is not None and key.is_editable:
            for kb in key.key_blocks:
                saved.append((kb, "mute", kb.mute))
                kb.mute = True
    return saved


def restore_meshes(saved: list) -> None:
    for owner, attr, value in reversed(saved):
        setattr(owner, attr, value)


def progress_handler(progress, action):
    first, last = take_range(action)
    span = max(1, last - first)

    done = [0.0]

    def on_frame(scene, _depsgraph=None):   # monotonic: the exporter jumps back to frame 1 at the end
        done[0] = max(done[0], min(1.0, (scene.frame_current - first) / span))
        progress(done[0])
    return on_frame


def save_state(scene, objs):
    vl = bpy.context.view_layer
    actions = {}
    for ob in objs:
        actions[ob.name] = (ob.animation_data.action if ob.animation_data else None,
                            ob.animation_data.action_slot if ob.animation_data else None)
        key = getattr(ob.data, "shape_keys", None)
        if key is not None:
            ad = key.animation_data
            actions["KEY:" + ob.name] = (ad.action if ad else None, ad.action_slot if ad else None)
    return dict(frame=(scene.frame_start, scene.frame_end, scene.frame_current),
                selected=[ob.name for ob in vl.objects if ob.select_get()],
                active=vl.objects.active.name if vl.objects.active else None,
                actions=actions, objs=[ob.name for ob in objs])


def restore_state(scene, saved):
    vl = bpy.context.view_layer
    for name in saved["objs"]:
        ob = bpy.data.objects.get(name)
        if ob is None:
            continue
        for id_data, key in ((ob, name), (getattr(ob.data, "shape_keys", None), "KEY:" + name)):
            if id_data is None or key not in saved["actions"]:
                continue
            act, slot = saved["actions"][key]
            ad = id_data.animation_data or id_data.animation_data_create()
            ad.action = act
            if act is not None and slot is not None:
                ad.action_slot = slot
    scene.frame_start, scene.frame_end, cur = saved["frame"]
    scene.frame_set(cur)
    for ob in vl.objects:
        ob.select_set(ob.name in saved["selected"])
    vl.objects.active = bpy.data.objects.get(saved["active"]) if saved["active"] else None
