"""Sidebar panels (draw only) in the 3D Viewport and the Sequencer."""
from __future__ import annotations

import bpy

from ..addon import bake, take_adjust
from ..model.adjust import Adjustments
from ..operators import generate_ops


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width)


def _draw(layout, context):
    s = context.scene.cospeech
    ob = context.active_object

    col = layout.column(align=True)
    col.label(text="Generate", icon="SPEAKER")
    why = generate_ops.missing_dependencies()
    if why:
        box = col.box()
        for line in _wrap(why, 40):
            box.label(text=line, icon="ERROR" if line == _wrap(why, 40)[0] else "BLANK1")
    job = generate_ops.RUNNING["job"]
    if job is not None:
        col.progress(factor=job.progress, text=f"Generating {int(job.progress * 100)}%")
        col.operator("cospeech.cancel_generation", icon="CANCEL")
    col.prop(s, "dialogue_text", icon="TEXT")
    col.operator("cospeech.generate", icon="PLAY_SOUND")
    col.operator("cospeech.regenerate_range", icon="FILE_REFRESH")
    col.prop(s, "style")
    col.prop(s, "guidance")
    row = col.row(align=True)
    row.prop(s, "seed")
    row.operator("cospeech.randomize_seed", text="", icon="FILE_REFRESH")
    col.prop(s, "variations")
    col.prop(s, "steps")
    col.prop(s, "device")
    box = layout.box()
    box.label(text="Animate")
    grid = box.grid_flow(columns=2, align=True)
    for p in ("animate_face", "animate_body", "animate_hands", "animate_lower"):
        grid.prop(s, p)
    box = layout.box()
    box.label(text="Regenerate Range")
    if context.scene.use_preview_range:
        box.label(text=f"Preview range {context.scene.frame_preview_start}–{context.scene.frame_preview_end}")
    else:
        row = box.row(align=True)
        row.prop(s, "regen_start")
        row.prop(s, "regen_end")
    box.prop(s, "lock_selected_keys")

    _draw_character(layout, context)

    box = layout.box()
    box.label(text="Rig & Takes", icon="ARMATURE_DATA")
    row = box.row(align=True)
    row.operator("cospeech.add_default_rig", text="Add Rig")
    row.operator("cospeech.import_motion", text="Import .npz")
    if ob is not None and ob.type == "ARMATURE":
        active = ob.animation_data.action if ob.animation_data else None
        for act in bake.takes_of(ob):
            r = box.row(align=True)
            op = r.operator("cospeech.set_take", text=act.name,
                            icon="PLAY" if act == active else "ACTION", depress=act == active)
            op.action = act.name
            r.operator("cospeech.delete_take", text="", icon="X").action = act.name
        if active is not None and active.get("cospeech_take"):
            box = layout.box()
            box.label(text="Adjust Take", icon="MODIFIER")
            box.prop(s, "adjust_preset")
            col = box.column(align=True)
            for p in ("adjust_mouth", "adjust_closure", "adjust_expression", "adjust_head", "adjust_gesture", "adjust_root",
                      "adjust_smooth_face", "adjust_smooth_body", "adjust_blink_rate"):
                col.prop(s, p, slider=True)
            box.operator("cospeech.adjust_take", icon="CHECKMARK")
            done = take_adjust.settings_of(active)
            if done is not None and not done.is_identity():
                box.label(text="Applied: " + ", ".join(f"{k} {v:g}" for k, v in done.to_dict().items()
                                                        if v != Adjustments().to_dict()[k]))

    box = layout.box()
    box.label(text="Export", icon="EXPORT")
    box.prop(s, "fbx_preset")
    op = box.operator("cospeech.export_fbx")
    op.preset = s.fbx_preset
    box.operator("cospeech.export_gltf")
    box.operator("cospeech.export_live_link", icon="FILE")
    box.operator("cospeech.bake_arkit", icon="SHAPEKEY_DATA")


def _draw_character(layout, context):
    from ..addon import bone_maps, rig
    from ..operators.retarget_ops import character
    s = context.scene.cospeech
    box = layout.box()
    box.label(text="Character", icon="OUTLINER_OB_ARMATURE")
    box.prop(s, "target")
    ob = character(context)
    if ob is None:
        return
    try:
        info = rig.detect_rig(ob)
    except rig.RigError as exc:
        for i, line in enumerate(_wrap(str(exc), 40)):
            box.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
        info = None
    if info is not None and info.kind != "retarget":
        box.label(text=f"{ob.name}: {info.kind.upper()} rig (no retargeting)", icon="CHECKMARK")
        return
    if info is not None:
        box.label(text=f"{ob.name}: {bone_maps.LABELS.get(info.convention, 'Custom bone map')}, "
                       f"{len(info.mapping)} bones", icon="CHECKMARK")
    box.prop(ob, "cospeech_root_motion")
    box.prop(ob, "cospeech_mouth")
    box.label(text="Bone Map (bone → SMPL-X joint)")
    row = box.row()
    row.template_list("COSPEECH_UL_bone_map", "", ob, "cospeech_bone_map", ob, "cospeech_bone_map_index", rows=4)
    col = row.column(align=True)
    col.operator("cospeech.bone_map_add", text="", icon="ADD")
    col.operator("cospeech.bone_map_remove", text="", icon="REMOVE")
    row = box.row(align=True)
    row.operator("cospeech.detect_bone_map", text="Detect")
    row.operator("cospeech.save_bone_map", text="Save")
    row.operator("cospeech.load_bone_map", text="Load")


class COSPEECH_UL_bone_map(bpy.types.UIList):
    """Rows of ``Object.cospeech_bone_map``: bone (searchable) and SMPL-X source."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.prop_search(item, "bone", data.data, "bones", text="")
        row.prop(item, "source", text="")


class _SidebarPanel:
    bl_label = "CoSpeech"
    bl_region_type = "UI"
    bl_category = "CoSpeech"

    def draw(self, context):
        _draw(self.layout, context)


class COSPEECH_PT_view3d(_SidebarPanel, bpy.types.Panel):
    bl_idname = "COSPEECH_PT_view3d"
    bl_space_type = "VIEW_3D"


class COSPEECH_PT_sequencer(_SidebarPanel, bpy.types.Panel):
    bl_idname = "COSPEECH_PT_sequencer"
    bl_space_type = "SEQUENCE_EDITOR"


CLASSES = (COSPEECH_UL_bone_map, COSPEECH_PT_view3d, COSPEECH_PT_sequencer)
