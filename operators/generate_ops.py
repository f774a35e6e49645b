"""Generate / regenerate-range operators (thin: validate, run the job, report).

``execute`` runs a job synchronously (scripts, the headless CLI, tests);
``invoke`` (buttons, F3) runs the model in a worker thread and drains it
from a modal timer, so Blender never freezes; Esc or the Cancel button
stops it and leaves the scene untouched.  Both paths go through
:mod:`addon.generation`, and only the final bake writes to the scene, so
one undo step reverts a whole generation.
"""
from __future__ import annotations

import importlib.util
import random
import threading

import bpy
from bpy.props import BoolProperty

from ..addon import audio, generation, rig

#: The job the UI is running (at most one at a time), for the panel and Cancel.
RUNNING = {"job": None}

USER_ERRORS = (generation.GenerationError, audio.StripError, rig.RigError, FileNotFoundError, ValueError)


def missing_dependencies() -> str:
    """Why generation cannot run in this Blender (empty string if it can)."""
    missing = [m for m in ("librosa", "scipy") if importlib.util.find_spec(m) is None]
    if importlib.util.find_spec("onnxruntime") is None and importlib.util.find_spec("torch") is None:
        missing.append("onnxruntime (or torch)")
    if missing:
        return (f"Missing Python packages: {', '.join(missing)}. Install the CoSpeech package built "
                "for your platform (it bundles them), see the README.")
    return ""


class _JobOperator:
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        why = missing_dependencies()
        if why:
            cls.poll_message_set(why)
            return False
        if RUNNING["job"] is not None:
            cls.poll_message_set("A generation is running (Esc or Cancel to stop it)")
            return False
        return context.scene is not None

    def prepare(self, context) -> generation.Job:  # pragma: no cover - overridden
        raise NotImplementedError

    def _prepare(self, context):
        try:
            return self.prepare(context)
        except USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return None

    def _finish(self, context, job) -> set:
        if job.cancel.is_set():
            self.report({"WARNING"}, "Generation cancelled: the scene is unchanged")
            return {"CANCELLED"}
        if job.error is not None:
            msg = str(job.error) or type(job.error).__name__
            self.report({"ERROR"}, f"Generation failed: {msg}")
            return {"CANCELLED"}
        if job.warning:
            self.report({"WARNING"}, job.warning)
        takes = job.apply(context)
        self.report({"INFO"}, f"Made {len(takes)} take(s): {', '.join(t.name for t in takes)}")
        return {"FINISHED"}

    # synchronous path ------------------------------------------------------
    def execute(self, context):
        job = self._prepare(context)
        if job is None:
            return {"CANCELLED"}
        job.run()
        return self._finish(context, job)

    # interactive path ------------------------------------------------------
    def invoke(self, context, event):
        job = self._prepare(context)
        if job is None:
            return {"CANCELLED"}
        self._job = job
        self._thread = threading.Thread(target=job.run, name="cospeech-generate", daemon=True)
        RUNNING["job"] = job
        self._thread.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC":
            job.cancel.set()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        pct = int(job.progress * 100)
        context.window_manager.progress_update(pct)
        if context.workspace is not None:
            context.workspace.status_text_set(f"CoSpeech: generating {pct}% — Esc to cancel")
        for area in context.screen.areas if context.screen else []:
            if area.type in {"VIEW_3D", "SEQUENCE_EDITOR"}:
                area.tag_redraw()
        if self._thread.is_alive():
            return {"RUNNING_MODAL"}
        self._cleanup(context)
        return self._finish(context, job)

    def cancel(self, context):
        self._job.cancel.set()
        self._cleanup(context)

    def _cleanup(self, context):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        RUNNING["job"] = None


def _needs_rig(context) -> bool:
    ob = context.active_object
    return (ob is None or ob.type != "ARMATURE") and generation.find_rig(context.scene) is None


class COSPEECH_OT_generate(_JobOperator, bpy.types.Operator):
    """Generate face and body motion from the selected sound strip as new take(s) on the active rig"""
    bl_idname = "cospeech.generate"
    bl_label = "Generate From Sound Strip"
    create_rig: BoolProperty(name="Create Default Rig", default=True,
                             description="Add the default SMPL-X rig when the scene has none")

    def prepare(self, context):
        return generation.prepare_generate(context, create_rig=self.create_rig)

    def invoke(self, context, event):
        if _needs_rig(context):
            return context.window_manager.invoke_confirm(
                self, event, title="No SMPL-X rig in the scene",
                message="Add the default SMPL-X rig and generate onto it?", confirm_text="Add Rig")
        return super().invoke(context, event)

    def execute(self, context):
        if self.options.is_invoke and _needs_rig(context):
            # confirmed from invoke: add the rig, then run interactively
            bpy.ops.cospeech.add_default_rig()
            return bpy.ops.cospeech.generate("INVOKE_DEFAULT")
        return super().execute(context)


class COSPEECH_OT_regenerate_range(_JobOperator, bpy.types.Operator):
    """In-paint a frame range of the active take with a new seed/settings as a new take
    (preview range, or Start/End in the panel); frames outside stay exactly as they were"""
    bl_idname = "cospeech.regenerate_range"
    bl_label = "Regenerate Range"

    def prepare(self, context):
        return generation.prepare_regenerate(context)


class COSPEECH_OT_cancel_generation(bpy.types.Operator):
    """Stop the running generation; the scene stays as it was"""
    bl_idname = "cospeech.cancel_generation"
    bl_label = "Cancel Generation"

    @classmethod
    def poll(cls, context):
        return RUNNING["job"] is not None

    def execute(self, context):
        RUNNING["job"].cancel.set()
        return {"FINISHED"}


class COSPEECH_OT_randomize_seed(bpy.types.Operator):
    """Pick a new random seed"""
    bl_idname = "cospeech.randomize_seed"
    bl_label = "Randomize Seed"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        context.scene.cospeech.seed = random.randrange(0, 2**31 - 1)
        return {"FINISHED"}


CLASSES = (COSPEECH_OT_generate, COSPEECH_OT_regenerate_range, COSPEECH_OT_cancel_generation,
           COSPEECH_OT_randomize_seed)
