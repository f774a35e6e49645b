"""Scene settings (saved with the .blend): ``scene.cospeech``."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .fbx_export import PRESETS

DEFAULT_STYLES = [("default", "Default", "The model's default style")]
_style_items_cache: list = []


def style_items(self, context):
    """Styles the bundled model was trained with (read lazily from model/)."""
    if not _style_items_cache:
        try:
            from ..model.generate import DEFAULT_STYLE, STYLES
            # the first item is the property's default: put the model's default first
            ordered = sorted(STYLES, key=lambda s: s[0] != DEFAULT_STYLE)
            _style_items_cache.extend((sid, label, desc) for sid, label, desc in ordered)
        except Exception:  # model missing or broken: the generate operator reports why
            _style_items_cache.extend(DEFAULT_STYLES)
    return _style_items_cache


def _apply_preset(settings, _context=None) -> None:
    """``adjust_preset`` update callback: set the dials to the preset's values."""
    from ..model.adjust import PRESETS
    p = PRESETS[settings.adjust_preset]
    for name, value in p.to_dict().items():
        setattr(settings, f"adjust_{name}", value)


class CoSpeechBoneMapItem(bpy.types.PropertyGroup):
    """One row of an armature's bone map (``Object.cospeech_bone_map``)."""
    bone: StringProperty(name="Bone", description="Bone of this armature")
    source: StringProperty(
        name="SMPL-X", description="SMPL-X joint this bone follows (e.g. left_elbow, spine3), or "
        "'joint_a>joint_b@t' for a rotation part-way between two joints (e.g. spine1>spine2@0.5); "
        "empty = leave the bone alone")


def _is_armature(_self, ob) -> bool:
    return ob.type == "ARMATURE"


class CoSpeechSettings(bpy.types.PropertyGroup):
    target: bpy.props.PointerProperty(
        name="Character", type=bpy.types.Object, poll=_is_armature,
        description="Armature to generate onto (your character: Rigify, Mixamo, Unreal, VRM or any "
                    "rig with a bone map). Empty = the selected SMPL-X/FLAME rig, or a new default rig")
    style: EnumProperty(name="Style", description="Gesture style learned from the capture",
                        items=style_items)
    guidance: FloatProperty(name="Guidance", default=2.0, min=0.0, soft_max=6.0, max=20.0,
                            description="Classifier-free guidance scale: higher follows the "
                                        "speech and style more closely, 1 = no guidance")
    seed: IntProperty(name="Seed", default=0, min=0, max=2**31 - 2,
                      description="Random seed: same seed, same motion (Variations use seed+1, +2, …, wrapping at 2³¹−1)")
    variations: IntProperty(name="Variations", default=1, min=1, max=16,
                            description="Number of takes to make, with seeds seed, seed+1, …")
    steps: IntProperty(name="Steps", default=8, min=1, max=50,
                       description="ODE sampling steps: fewer is faster, more is smoother")
    animate_face: BoolProperty(name="Face", default=True, description="Jaw, eyes and expressions")
    animate_body: BoolProperty(name="Body", default=True, description="Spine, neck, head and arms")
    animate_hands: BoolProperty(name="Hands", default=True, description="Fingers")
    animate_lower: BoolProperty(name="Lower Body & Root", default=True,
                                description="Legs, pelvis rotation and root translation")
    device: EnumProperty(name="Device", default="AUTO",
                         items=[("AUTO", "Auto", "CUDA when a GPU is present, else CPU"),
                                ("CPU", "CPU", "Always run on the CPU"),
                                ("CUDA", "CUDA", "NVIDIA GPU (falls back to CPU with a warning)")])
    fbx_preset: EnumProperty(name="Preset", default="UNITY",
                             items=[(k, v[0], v[1]) for k, v in PRESETS.items()])
    fbx_path: StringProperty(name="FBX File", subtype="FILE_PATH", default="//cospeech_take.fbx")
    lock_selected_keys: BoolProperty(
        name="Keep Selected Keys", default=True,
        description="When regenerating a range, frames with selected keyframes on the take "
                    "are kept exactly and the model works around them")
    regen_start: IntProperty(name="Start", default=1, description="First frame to regenerate "
                             "(used when the scene's preview range is off)")
    regen_end: IntProperty(name="End", default=100, description="Last frame to regenerate")
    dialogue_text: StringProperty(
        name="Text", default="",
        description="The line's dialogue text (English, optional): Generate aligns its words with the speech "
                    "(PocketSphinx) and times the mouth by those phones instead of decoding them; if they do "
                    "not match, the take is made from the decoded phones and the report says so")

    # artist dials (model/adjust.py): applied to the active take by "Adjust Take"
    adjust_preset: EnumProperty(
        name="Preset", default="NATURAL", update=_apply_preset,
        items=[("SUBTLE", "Subtle", "Smaller head and gesture motion, softer mouth"),
               ("NATURAL", "Natural", "The take as generated (all 100 %, no smoothing)"),
               ("BROADCAST", "Broadcast", "Presenter: clear mouth, calm head and root"),
               ("CARTOON", "Cartoon", "Exaggerated mouth, face, head and gestures")])
    adjust_mouth: FloatProperty(name="Mouth", default=100.0, min=0.0, max=200.0, subtype="PERCENTAGE",
                                description="Jaw opening about the take's mean (0 = held, 200 = double)")
    adjust_expression: FloatProperty(name="Expressions", default=100.0, min=0.0, max=200.0, subtype="PERCENTAGE",
                                     description="FLAME expression intensity about the take's mean")
    adjust_head: FloatProperty(name="Head Motion", default=100.0, min=0.0, max=200.0, subtype="PERCENTAGE",
                               description="Neck and head rotation about their mean pose")
    adjust_gesture: FloatProperty(name="Gestures", default=100.0, min=0.0, max=200.0, subtype="PERCENTAGE",
                                  description="Spine, arm, hand and finger rotation about their mean pose")
    adjust_root: FloatProperty(name="Weight Shift", default=100.0, min=0.0, max=200.0, subtype="PERCENTAGE",
                               description="Pelvis rotation and root translation about their mean")
    adjust_closure: FloatProperty(name="Lip Closure", default=0.0, min=0.0, max=100.0, subtype="PERCENTAGE",
                                  description="Close the jaw further at its closures (P, B, M): 100 = fully shut")
    adjust_smooth_face: FloatProperty(name="Smooth Face", default=0.0, min=0.0, max=10.0,
                                      description="Gaussian smoothing of jaw, eyes and expressions (σ, frames at 30 fps)")
    adjust_smooth_body: FloatProperty(name="Smooth Body", default=0.0, min=0.0, max=10.0,
                                      description="Gaussian smoothing of body rotations and root (σ, frames at 30 fps)")
    adjust_blink_rate: FloatProperty(name="Blinks / min", default=15.0, min=0.0, max=40.0,
                                     description="Mean blinks per minute of the take's ARKit face (eyeBlink*: "
                                                 "Bake ARKit Face, Live Link, characters). People blink ~10-20 "
                                                 "times a minute, more in conversation")

    def adjustments(self):
        """The dials as :class:`model.adjust.Adjustments`."""
        from ..model.adjust import Adjustments
        return Adjustments(mouth=self.adjust_mouth, expression=self.adjust_expression, head=self.adjust_head,
                           gesture=self.adjust_gesture, root=self.adjust_root,
                           smooth_face=self.adjust_smooth_face, smooth_body=self.adjust_smooth_body,
                           closure=self.adjust_closure, blink_rate=self.adjust_blink_rate)

    def parts(self) -> set[str]:
        """Body parts switched on, as :data:`addon.bake_target.PARTS` keys."""
        out = set()
        if self.animate_face:
            out.add("face")
        if self.animate_body:
            out.add("body")
        if self.animate_hands:
            out.add("hands")
        if self.animate_lower:
            out.update({"lower", "root"})
        return out


from .prefs import ADDON_ID, preferences  # noqa: F401  (re-exported)


class CoSpeechPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID
    weights_dir: StringProperty(
        name="Model Weights Folder", subtype="DIR_PATH", default="",
        description="Folder with your own trained weights: cospeech.json plus cospeech.onnx "
                    "(ONNX Runtime, what the CPU path uses; `python -m model.training.export_onnx` writes it) "
                    "and/or cospeech.safetensors (PyTorch). Empty = the bundled model")

    def draw(self, context):
        self.layout.prop(self, "weights_dir")
        try:
            from ..model.generate import device_summary
            from .backend import choose_backend
            for dev in ("auto", "cuda"):
                text = device_summary(dev, choose_backend(dev))
                self.layout.label(text=f"{dev.upper()}: {text}", icon="INFO")
        except Exception as exc:  # backend missing: say so instead of a traceback
            self.layout.label(text=f"Model unavailable: {exc}", icon="ERROR")


def register():
    bpy.utils.register_class(CoSpeechPreferences)
    bpy.utils.register_class(CoSpeechBoneMapItem)
    bpy.utils.register_class(CoSpeechSettings)
    bpy.types.Scene.cospeech = bpy.props.PointerProperty(type=CoSpeechSettings)
    bpy.types.Object.cospeech_bone_map = bpy.props.CollectionProperty(type=CoSpeechBoneMapItem)
    bpy.types.Object.cospeech_bone_map_index = IntProperty(default=0)
    bpy.types.Object.cospeech_root_motion = EnumProperty(
        name="Root Motion", default="KEEP",
        items=[("KEEP", "Keep", "The hips travel as generated, scaled by the character's hip height"),
               ("IN_PLACE", "In Place", "Only the hips' up-down motion; the character stays on its spot")])
    bpy.types.Object.cospeech_mouth = EnumProperty(
        name="Mouth", default="AUTO",
        description="Which mouth shapes a face with both ARKit and viseme keys drives (one mouth per mesh: "
                    "driving both opens it twice as wide); the choice is recorded on each take",
        items=[("AUTO", "Auto", "ARKit when the mesh has the ARKit mouth (jawOpen …), else its visemes"),
               ("ARKIT", "ARKit", "The ARKit mouth shapes; visemes stay at rest"),
               ("VISEMES", "Visemes", "The Oculus visemes; ARKit mouth shapes stay at rest (eyes, brows still ARKit)"),
               ("BOTH", "Both", "Both sets (only for rigs whose two sets do not add up)")])


def unregister():
    del bpy.types.Object.cospeech_mouth
    del bpy.types.Object.cospeech_root_motion
    del bpy.types.Object.cospeech_bone_map_index
    del bpy.types.Object.cospeech_bone_map
    del bpy.types.Scene.cospeech
    bpy.utils.unregister_class(CoSpeechSettings)
    bpy.utils.unregister_class(CoSpeechBoneMapItem)
    bpy.utils.unregister_class(CoSpeechPreferences)
