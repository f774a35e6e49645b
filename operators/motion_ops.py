"""Rig, import, take and FBX operators (thin: validate, call addon/, report)."""
from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..addon import bake, fbx_export, rig, rig_build, take_adjust
from ..model.adjust import Adjustments
from ..model.motion import MotionClip, MotionFormatError


def active_rig(context):
    """RigInfo of the active object, raising rig.RigError with the reason."""
    return rig.detect_rig(context.active_object)


class COSPEECH_OT_add_default_rig(bpy.types.Operator):
    """Add the licence-free SMPL-X rig (mannequin-x wooden mesh, Exp### shape keys)"""
    bl_idname = "cospeech.add_default_rig"
    bl_label = "Add SMPL-X Rig"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        try:
            arm, _ = rig_build.build_default_rig(collection=context.collection)
        except FileNotFoundError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for ob in context.view_layer.objects:
            ob.select_set(False)
        arm.select_set(True)
        context.view_layer.objects.active = arm
        return {"FINISHED"}


class COSPEECH_OT_add_smplx_model_rig(bpy.types.Operator, ImportHelper):
    """Build a rig from your own licensed SMPL-X model file (SMPLX_*.npz)"""
    bl_idname = "cospeech.add_smplx_model_rig"
    bl_label = "Add Rig From SMPL-X Model"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def execute(self, context):
        try:
            arm, _ = rig_build.build_smplx_model_rig(self.filepath, collection=context.collection)
        except (FileNotFoundError, rig.RigError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        context.view_layer.objects.active = arm
        return {"FINISHED"}


class COSPEECH_OT_import_motion(bpy.types.Operator, ImportHelper):
    """Import a BEAT2 / AMASS-style SMPL-X .npz as a new take on the active rig
    (or on a new default rig when no SMPL-X/FLAME armature is active)"""
    bl_idname = "cospeech.import_motion"
    bl_label = "Import SMPL-X Motion (.npz)"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def execute(self, context):
        try:
            clip = MotionClip.load(self.filepath)
        except (FileNotFoundError, MotionFormatError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        ob = context.active_object
        if ob is not None and ob.type == "ARMATURE":
            try:
                info = rig.detect_rig(ob)
            except rig.RigError as exc:
                self.report({"ERROR"}, str(exc))
                return {"CANCELLED"}
        else:
            arm, _ = rig_build.build_default_rig(collection=context.collection)
            context.view_layer.objects.active = arm
            info = rig.detect_rig(arm)
        name = os.path.splitext(os.path.basename(self.filepath))[0]
        take = bake.bake_clip(info, clip, context.scene.frame_current, name=name, scene=context.scene)
        self.report({"INFO"}, f"Imported {clip.num_frames} frames as take '{take.action.name}' "
                              f"(frames {take.frame_start}–{take.frame_end})")
        return {"FINISHED"}


class _ExportTake:
    """Shared by the take exporters: poll on a rig with a take, progress in the
    status bar, the exporter's message on failure.  ``write(info, action, wm_progress)``
    does the format's part."""

    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        ob = context.active_object
        if ob is None or ob.type != "ARMATURE" or ob.animation_data is None or ob.animation_data.action is None:
            cls.poll_message_set("Select a rig with a take to export")
            return False
        return True

    def execute(self, context):
        try:
            info = active_rig(context)
            wm = context.window_manager
            wm.progress_begin(0, 100)
            try:
                path = self.write(context, info, info.armature.animation_data.action,
                                  lambda f: wm.progress_update(int(f * 100)))
            finally:
                wm.progress_end()
        except (rig.RigError, fbx_export.ExportError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {path}")
        return {"FINISHED"}


class COSPEECH_OT_export_fbx(_ExportTake, bpy.types.Operator, ExportHelper):
    """Export the active take of the active rig as FBX with a game-engine preset"""
    bl_idname = "cospeech.export_fbx"
    bl_label = "Export Take (FBX)"
    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx", options={"HIDDEN"})
    preset: EnumProperty(name="Preset", items=[(k, v[0], v[1]) for k, v in fbx_export.PRESETS.items()])

    def write(self, context, info, action, progress):
        return fbx_export.export_take(info, action, self.filepath, self.preset, context.scene, progress=progress)


class COSPEECH_OT_export_gltf(_ExportTake, bpy.types.Operator, ExportHelper):
    """Export the active take of the active rig as binary glTF 2.0 (Godot, three.js, Babylon, glTFast)"""
    bl_idname = "cospeech.export_gltf"
    bl_label = "Export Take (glTF)"
    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb", options={"HIDDEN"})

    def write(self, context, info, action, progress):
        from ..addon import gltf_export
        return gltf_export.export_take(info, action, self.filepath, context.scene, progress=progress)


def _rig_or_report(op, context):
    """The active rig's RigInfo, or None after reporting why not."""
    try:
        return active_rig(context)
    except rig.RigError as exc:
        op.report({"ERROR"}, str(exc))
        return None


def _take_or_report(op):
    """The take action named by ``op.action``, or None after reporting why not."""
    act = bpy.data.actions.get(op.action)
    if act is None or not act.get("cospeech_take"):
        op.report({"ERROR"}, f"No take named '{op.action}'")
        return None
    return act


class COSPEECH_OT_set_take(bpy.types.Operator):
    """Make this take the active animation of the rig"""
    bl_idname = "cospeech.set_take"
    bl_label = "Use Take"
    bl_options = {"REGISTER", "UNDO"}
    action: StringProperty(name="Take")

    @classmethod
    def description(cls, context, properties):
        """Tooltip: the take's source, settings and artist dials."""
        act = bpy.data.actions.get(properties.action)
        if act is None:
            return "Make this take the active animation of the rig"
        bits = [f"{k[9:]}: {act[k]}" for k in ("cospeech_strip", "cospeech_style", "cospeech_seed",
                                                "cospeech_guidance", "cospeech_steps") if k in act]
        adj = take_adjust.settings_of(act)
        if adj is not None:
            bits.append("dials: " + ", ".join(f"{k} {v:g}" for k, v in adj.to_dict().items()))
        return "Use this take. " + "; ".join(bits)

    def execute(self, context):
        act = _take_or_report(self)
        info = _rig_or_report(self, context) if act is not None else None
        if info is None:
            return {"CANCELLED"}
        bake.activate_take(info, act)
        return {"FINISHED"}


class COSPEECH_OT_delete_take(bpy.types.Operator):
    """Delete this take (its armature and face actions); undo brings it back"""
    bl_idname = "cospeech.delete_take"
    bl_label = "Delete Take"
    bl_options = {"REGISTER", "UNDO"}
    action: StringProperty(name="Take")

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        act = _take_or_report(self)
        if act is None:
            return {"CANCELLED"}
        owner = bake.owner_of(act)
        try:
            info = rig.detect_rig(owner) if owner is not None else None
        except rig.RigError:
            info = None
        if info is not None:
            bake.delete_take(info, act)
        else:   # its rig is gone: just the actions
            for kact in bake.key_actions_of(act):
                bpy.data.actions.remove(kact)
            bpy.data.actions.remove(act)
        return {"FINISHED"}


class COSPEECH_OT_adjust_take(bpy.types.Operator):
    """Apply the dials (mouth, expressions, head, gestures, weight shift, smoothing) to the active
    take, re-baked from the model's raw output; keys you edited or selected are kept"""
    bl_idname = "cospeech.adjust_take"
    bl_label = "Adjust Take"
    bl_options = {"REGISTER", "UNDO"}
    overwrite_edited: BoolProperty(name="Overwrite Edited Channels", default=False,
                                   description="Also overwrite f-curves you edited by hand since the last bake")

    def execute(self, context):
        from . import generate_ops
        if generate_ops.RUNNING["job"] is not None:
            self.report({"ERROR"}, "A generation is running: adjust the take when it has finished")
            return {"CANCELLED"}
        got = _active_take_or_report(self, context)
        if got is None:
            return {"CANCELLED"}
        info, take = got
        s = context.scene.cospeech
        res = take_adjust.adjust_take(info, take, s.adjustments(), context.scene,
                                      lock_selected=s.lock_selected_keys, overwrite_edited=self.overwrite_edited)
        msg = f"Adjusted '{take.name}' from its {res['source']}"
        if res["source"] == "keys":
            msg += " (no raw model output stored on this take: imported or from an older version)"
        if res["skipped_edited"]:
            msg += (f"; left {len(res['skipped_edited'])} hand-edited channel(s) alone "
                    "(Overwrite Edited Channels in the operator panel to replace them)")
        if res["closure_unavailable"]:
            msg += "; Lip Closure not applied: this take has no audio closure cue (regenerate it to get one)"
        warn = res["skipped_edited"] or res["source"] == "keys" or res["closure_unavailable"]
        self.report({"WARNING"} if warn else {"INFO"}, msg)
        return {"FINISHED"}


def _active_take_or_report(op, context):
    """(rig info, take action) of the active rig's CoSpeech take, or None after reporting why not."""
    info = _rig_or_report(op, context)
    if info is None:
        return None
    ad = info.armature.animation_data
    take = ad.action if ad else None
    if take is None or not take.get("cospeech_take"):
        op.report({"ERROR"}, "The active rig has no CoSpeech take")
        return None
    return info, take


def _take_clip(context, op):
    """(rig info, take, clip at the scene rate) of the active rig's take, or None after
    reporting.  The clip is read from the take's keys, so dials and hand edits are in it."""
    got = _active_take_or_report(op, context)
    if got is None:
        return None
    from ..addon.take_keys import take_to_clip
    info, take = got
    f0, f1 = int(take["cospeech_frame_start"]), int(take["cospeech_frame_end"])
    return info, take, take_to_clip(info, take, f0, f1, bake.scene_fps(context.scene))


def _blink_rate(take) -> float:
    """Blinks per minute the take was adjusted to (Adjust Take's *Blinks* dial), else the default."""
    adj = take_adjust.settings_of(take)
    return float(adj.blink_rate) if adj is not None else Adjustments().blink_rate


class COSPEECH_OT_bake_arkit(bpy.types.Operator):
    """Key the ARKit- and viseme-named shape keys (jawOpen, eyeBlinkLeft, viseme_aa, …) of the selected meshes from the active take"""
    bl_idname = "cospeech.bake_arkit"
    bl_label = "Bake ARKit Face"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from ..addon import arkit_bake
        from ..addon.bake_target import all_face_keys
        if not context.scene.cospeech.animate_face:
            self.report({"ERROR"}, "Face is switched off under Animate")
            return {"CANCELLED"}
        got = _take_clip(context, self)
        if got is None:
            return {"CANCELLED"}
        info, take, clip = got
        own = {m.name for m, _ in info.expression_meshes}
        meshes = [o for o in context.selected_objects if o.type == "MESH" and o.name not in own]
        meshes = meshes or [o for o in context.scene.objects if o.type == "MESH" and o.name not in own
                            and all_face_keys(o)]
        if not meshes:
            self.report({"ERROR"}, "No mesh with ARKit- or viseme-named shape keys (select one)")
            return {"CANCELLED"}
        lines, baked = [], 0
        for m in meshes:
            if not all_face_keys(m):
                lines.append(f"{m.name}: no ARKit or viseme shape keys, not animated")
                continue
            try:
                res = arkit_bake.bake_arkit(m, clip, int(take["cospeech_frame_start"]), take.name,
                                            take_adjust.face_seed(take), _blink_rate(take),
                                            mouth=getattr(info.armature, "cospeech_mouth", "AUTO"))
            except ValueError as exc:
                lines.append(str(exc))
                continue
            baked += 1
            lines.append(arkit_bake.summary(m.name, res))
        self.report({"INFO"} if baked == len(meshes) else {"WARNING"}, "; ".join(lines))
        return {"FINISHED"} if baked else {"CANCELLED"}


class COSPEECH_OT_export_live_link(bpy.types.Operator, ExportHelper):
    """Export the active take's ARKit curves as a Live Link Face CSV (Unreal / MetaHuman)"""
    bl_idname = "cospeech.export_live_link"
    bl_label = "Export Live Link Face CSV"
    bl_options = {"REGISTER"}
    filename_ext = ".csv"
    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"})
    fps: EnumProperty(name="Frame Rate", default="60", items=[("60", "60 fps", ""), ("30", "30 fps", "")])

    def execute(self, context):
        from ..model.arkit import write_live_link_csv
        got = _take_clip(context, self)
        if got is None:
            return {"CANCELLED"}
        _info, take, clip = got
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.filepath)), exist_ok=True)
            n = write_live_link_csv(self.filepath, clip, float(self.fps), take_adjust.face_seed(take),
                                    _blink_rate(take))
        except OSError as exc:
            self.report({"ERROR"}, f"Cannot write {self.filepath}: {exc.strerror or exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {n} frames to {self.filepath}")
        return {"FINISHED"}


CLASSES = (COSPEECH_OT_add_default_rig, COSPEECH_OT_add_smplx_model_rig, COSPEECH_OT_import_motion,
           COSPEECH_OT_export_fbx, COSPEECH_OT_export_gltf, COSPEECH_OT_set_take, COSPEECH_OT_delete_take, COSPEECH_OT_adjust_take,
           COSPEECH_OT_bake_arkit, COSPEECH_OT_export_live_link)
