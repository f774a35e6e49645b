"""bpy.types.Operator classes (``cospeech.*``)."""
import bpy

from . import generate_ops, motion_ops

CLASSES = motion_ops.CLASSES + generate_ops.CLASSES


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
