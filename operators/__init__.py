"""bpy.types.Operator classes (``cospeech.*``)."""
import bpy

from . import generate_ops, motion_ops, retarget_ops

CLASSES = motion_ops.CLASSES + generate_ops.CLASSES + retarget_ops.CLASSES


# bpy.utils.register_classes_factory: registers in order, unregisters in reverse
register, unregister = bpy.utils.register_classes_factory(CLASSES)
