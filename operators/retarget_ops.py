"""Bone map operators for retargeting onto a character (thin: call addon/, report)."""
from __future__ import annotations

import os

import bpy
from bpy.props import EnumProperty, StringProperty

from ..addon import bone_maps, rig


def character(context):
    """The armature the bone map applies to: the panel's Character, else the active armature."""
    ob = context.scene.cospeech.target or context.active_object
    return ob if ob is not None and ob.type == "ARMATURE" else None


def presets_dir(create: bool = False) -> str:
    """User folder for bone map presets (the extension's user directory, or
    Blender's config folder when not installed as an extension)."""
    try:
        return bpy.utils.extension_path_user(__package__.rsplit(".", 1)[0], path="bone_maps",
                                             create=create)
    except (ValueError, AttributeError):
        path = bpy.utils.user_resource("CONFIG", path=os.path.join("cospeech", "bone_maps"))
        if create:
            os.makedirs(path, exist_ok=True)
        return path


def _character_or_report(op, context):
    """:func:`character`, or None after reporting that there is none."""
    ob = character(context)
    if ob is None:
        op.report({"ERROR"}, "Select the character's armature (or set Character).")
    return ob


def _fill(ob, mapping: dict) -> None:
    ob.cospeech_bone_map.clear()
    for bone, src in mapping.items():
        item = ob.cospeech_bone_map.add()
        item.bone, item.source = bone, bone_maps.format_source(src)


class COSPEECH_OT_detect_bone_map(bpy.types.Operator):
    """Fill the character's bone map from its bone names (Rigify, Mixamo, Unreal Engine 5, VRM)"""
    bl_idname = "cospeech.detect_bone_map"
    bl_label = "Detect Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        ob = _character_or_report(self, context)
        if ob is None:
            return {"CANCELLED"}
        conv, mapping = bone_maps.detect(b.name for b in ob.data.bones)
        if not mapping:
            self.report({"ERROR"}, f"'{ob.name}': no Rigify, Mixamo, Unreal Engine 5 or VRM bone names; "
                                   "add rows by hand.")
            return {"CANCELLED"}
        _fill(ob, mapping)
        missing = bone_maps.missing_required(mapping)
        msg = f"{bone_maps.LABELS[conv]}: {len(mapping)} bones mapped"
        self.report({"WARNING"} if missing else {"INFO"},
                    msg + (f"; still missing {', '.join(missing)}" if missing else ""))
        return {"FINISHED"}


class COSPEECH_OT_bone_map_add(bpy.types.Operator):
    """Add a row to the character's bone map"""
    bl_idname = "cospeech.bone_map_add"
    bl_label = "Add Bone Map Row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        ob = _character_or_report(self, context)
        if ob is None:
            return {"CANCELLED"}
        ob.cospeech_bone_map.add()
        ob.cospeech_bone_map_index = len(ob.cospeech_bone_map) - 1
        return {"FINISHED"}


class COSPEECH_OT_bone_map_remove(bpy.types.Operator):
    """Remove the selected row of the bone map"""
    bl_idname = "cospeech.bone_map_remove"
    bl_label = "Remove Bone Map Row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        ob = character(context)
        if ob is None or not len(ob.cospeech_bone_map):
            return {"CANCELLED"}
        ob.cospeech_bone_map.remove(min(ob.cospeech_bone_map_index, len(ob.cospeech_bone_map) - 1))
        ob.cospeech_bone_map_index = max(0, ob.cospeech_bone_map_index - 1)
        return {"FINISHED"}


class COSPEECH_OT_save_bone_map(bpy.types.Operator):
    """Save the character's bone map as a preset for other characters"""
    bl_idname = "cospeech.save_bone_map"
    bl_label = "Save Bone Map Preset"
    name: StringProperty(name="Preset Name", default="My Character")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        ob = character(context)
        try:
            mapping = rig.user_bone_map(ob) if ob is not None else {}
        except rig.RigError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not mapping:
            self.report({"ERROR"}, "The bone map is empty: Detect it or add rows first.")
            return {"CANCELLED"}
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in self.name).strip() or "preset"
        try:
            path = bone_maps.save_preset(os.path.join(presets_dir(create=True), safe + ".json"), mapping)
        except OSError as exc:
            self.report({"ERROR"}, f"Cannot save the preset: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved {path}")
        return {"FINISHED"}


def _preset_items(_self, _context):
    folder = presets_dir()
    names = sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".json")) if os.path.isdir(folder) else []
    return [(n, n, "") for n in names] or [("", "(no presets saved)", "")]


class COSPEECH_OT_load_bone_map(bpy.types.Operator):
    """Load a saved bone map preset onto the character"""
    bl_idname = "cospeech.load_bone_map"
    bl_label = "Load Bone Map Preset"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "preset"
    preset: EnumProperty(name="Preset", items=_preset_items)

    def invoke(self, context, event):
        context.window_manager.invoke_search_popup(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        ob = character(context)
        if ob is None or not self.preset:
            self.report({"ERROR"}, "Select the character's armature and a preset.")
            return {"CANCELLED"}
        try:
            _conv, mapping = bone_maps.load_preset(os.path.join(presets_dir(), self.preset + ".json"))
        except (OSError, ValueError) as exc:
            self.report({"ERROR"}, f"Cannot load preset '{self.preset}': {exc}")
            return {"CANCELLED"}
        absent = [b for b in mapping if b not in ob.data.bones]
        _fill(ob, {b: s for b, s in mapping.items() if b in ob.data.bones})
        if absent:
            self.report({"WARNING"}, f"{len(absent)} bones of the preset are not in '{ob.name}': "
                                     + ", ".join(absent[:6]))
        return {"FINISHED"}


CLASSES = (COSPEECH_OT_detect_bone_map, COSPEECH_OT_bone_map_add, COSPEECH_OT_bone_map_remove,
           COSPEECH_OT_save_bone_map, COSPEECH_OT_load_bone_map)
