"""The add-on's id and its preferences (a leaf module: settings, the
backend and generation read the preferences through it)."""
from __future__ import annotations

import bpy

ADDON_ID = __package__.rsplit(".", 1)[0]   # "bl_ext.<repo>.cospeech" inside Blender


def preferences(context=None):
    """This add-on's preferences, or None when not registered as an add-on (tests, CLI)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None
