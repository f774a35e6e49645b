"""Blender-side glue: settings, audio strips, rigs, baking, FBX presets."""
