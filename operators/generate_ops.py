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

from ..addon import audio, generation, regenerate, rig

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


def finish(context, job) -> tuple[set, list]:
    """Bake a finished job's results; returns (operator result, reports).

    Reports are ``(level, message)`` pairs for ``Operator.report``.  A
    cancelled or failed job, or a bake that fails part-way (rolled back by
    ``Job.apply``), leaves the scene unchanged and returns ``{"CANCELLED"}``.
    """
    if job.cancel.is_set():
        return {"CANCELLED"}, [({"WARNING"}, "Generation cancelled: the scene is unchanged")]
    if job.error is not None:
        msg = str(job.error) or type(job.error).__name__
        return {"CANCELLED"}, [({"ERROR"}, f"Generation failed: {msg}")]
    reports = [({"WARNING"}, job.warning)] if job.warning else []
    try:
        takes = job.apply(context)   # all or nothing
    except Exception as exc:   # noqa: BLE001 - rolled back and reported, never a traceback
        return {"CANCELLED"}, reports + [({"ERROR"}, f"Nothing was baked ({type(exc).__name__}: {exc}); "
                                                     "the scene is unchanged")]
    return {"FINISHED"}, reports + [({"INFO"}, f"Made {len(takes)} take(s): {', '.join(t.name for t in takes)}")]


class JobRunner:
    """The interactive path of a job: the model runs in a worker thread while
    Blender's modal timer polls it, shows progress and passes Esc on.

    ``start`` → ``step`` on every modal event until it returns ``"DONE"`` →
    :func:`finish`.  ``stop`` cleans up (also on cancel); only ``finish``
    touches the scene, on the main thread.
    """

    def __init__(self, job: generation.Job):
        self.job = job
        self._thread = threading.Thread(target=job.run, name="cospeech-generate", daemon=True)
        self._timer = None

    def start(self, context) -> None:
        RUNNING["job"] = self.job
        self._thread.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)

    def step(self, context, event_type: str) -> str:
        """Handle one modal event: ``"PASS_THROUGH"`` (not ours), ``"RUNNING"``
        or ``"DONE"`` (the worker has ended; cleaned up, call :func:`finish`)."""
        if event_type == "ESC":
            self.job.cancel.set()
        if event_type != "TIMER":
            return "PASS_THROUGH"
        pct = int(self.job.progress * 100)
        context.window_manager.progress_update(pct)
        if context.workspace is not None:
            context.workspace.status_text_set(f"CoSpeech: generating {pct}% — Esc to cancel")
        for area in context.screen.areas if context.screen else []:
            if area.type in {"VIEW_3D", "SEQUENCE_EDITOR"}:
                area.tag_redraw()
        if self._thread.is_alive():
            return "RUNNING"
        self.stop(context)
        return "DONE"

    def stop(self, context) -> None:
        """Cancel the worker if still running, remove the timer, clear the status."""
        if self._thread.is_alive():
            self.job.cancel.set()
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
            wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        if RUNNING["job"] is self.job:
            RUNNING["job"] = None


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
        result, reports = finish(context, job)
        for level, msg in reports:
            self.report(level, msg)
        return result

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
        self._runner = JobRunner(job)
        self._runner.start(context)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        state = self._runner.step(context, event.type)
        if state == "PASS_THROUGH":
            return {"PASS_THROUGH"}
        if state == "RUNNING":
            return {"RUNNING_MODAL"}
        return self._finish(context, self._runner.job)

    def cancel(self, context):
        self._runner.stop(context)


def _needs_rig(context) -> bool:
    ob = context.scene.cospeech.target or context.active_object
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
        return regenerate.prepare_regenerate(context)


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
