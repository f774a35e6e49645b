"""bpy.types.Panel classes (draw only)."""
import bpy

from . import main_panel

CLASSES = main_panel.CLASSES


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
