"""bpy.types.Panel classes (draw only)."""
import bpy

from . import main_panel

CLASSES = main_panel.CLASSES


# bpy.utils.register_classes_factory: registers in order, unregisters in reverse
register, unregister = bpy.utils.register_classes_factory(CLASSES)
