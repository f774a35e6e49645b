"""Errors the Blender-side modules raise with a message for the user (a leaf
module: rig, retarget and bake import it, it imports nothing of ours)."""
from __future__ import annotations


class RigError(ValueError):
    """The armature cannot receive SMPL-X motion; the message says why."""


class GenerationError(ValueError):
    """The request cannot run; the message is shown to the user as is."""
