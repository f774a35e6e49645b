"""Blender API differences between 4.5 LTS and 5.0 in one place.

* Actions: Blender 4.4 introduced slotted (layered) actions and 5.0 removed
  the legacy ``Action.fcurves``; we always go through
  slot → layer → keyframe strip → ``channelbag(slot, ensure=True)``, which
  both versions support (Blender Python API, ``bpy.types.ActionKeyframeStrip``).
* Sequencer: ``SequenceEditor.sequences`` became ``strips`` in 4.4 and the old
  name is gone in 5.0.  Blender 5.1+ renames a strip's timing
  (``frame_start`` → ``content_start``, ``frame_final_start`` /
  ``frame_final_end`` → ``left_handle`` / ``right_handle``; the old names
  warn "expected to be removed in Blender 6.0"): :func:`strip_timing`.
"""
from __future__ import annotations

import bpy


def new_action(name: str, id_type: str, id_name: str):
    """Create an empty layered action with one slot, one layer and one keyframe strip.

    Args:
        name: action name (Blender may suffix ``.001`` if taken).
        id_type: ``'OBJECT'`` for armatures, ``'KEY'`` for shape-key datablocks.
        id_name: slot display name (usually the animated ID's name).
    Returns:
        (action, slot, channelbag).
    """
    action = bpy.data.actions.new(name)
    slot = action.slots.new(id_type=id_type, name=id_name)
    layer = action.layers.new("Layer")
    strip = layer.strips.new(type="KEYFRAME")
    return action, slot, strip.channelbag(slot, ensure=True)


def action_channelbag(action, slot=None):
    """The channelbag (f-curve container) of ``action`` for ``slot`` (first slot if None), or None."""
    if action is None or len(action.slots) == 0 or len(action.layers) == 0:
        return None
    slot = slot or action.slots[0]
    for strip in action.layers[0].strips:
        bag = strip.channelbag(slot)
        if bag is not None:
            return bag
    return None


def action_fcurves(action, slot=None):
    """F-curves of ``action`` for ``slot``, as a list (empty if none)."""
    bag = action_channelbag(action, slot)
    return list(bag.fcurves) if bag is not None else []


def assign_action(id_data, action, slot=None) -> None:
    """Make ``action`` (with ``slot``, default its first) the active action of ``id_data``."""
    ad = id_data.animation_data or id_data.animation_data_create()
    ad.action = action
    if slot is not None:
        ad.action_slot = slot
    elif action is not None and len(action.slots) and ad.action_slot is None:
        ad.action_slot = action.slots[0]


def sequencer_strips(scene, all_strips: bool = True):
    """Sequencer strips of ``scene`` (empty list if it has no sequence editor)."""
    ed = scene.sequence_editor
    if ed is None:
        return []
    if hasattr(ed, "strips_all"):
        return list(ed.strips_all if all_strips else ed.strips)
    return list(ed.sequences_all if all_strips else ed.sequences)


def new_sound_strip(scene, name: str, filepath: str, channel: int, frame_start: int):
    """Add a sound strip (4.5: ``sequences.new_sound``; 5.0: ``strips.new_sound``)."""
    ed = scene.sequence_editor or scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    return coll.new_sound(name, filepath, channel, frame_start)


def strip_timing(strip) -> tuple[float, int, int]:
    """(content start, first heard frame, end frame exclusive) of a strip:
    ``content_start, left_handle, right_handle`` on Blender 5.1+, else
    ``frame_start, frame_final_start, frame_final_end`` (same values)."""
    if hasattr(strip, "left_handle"):
        return float(strip.content_start), int(strip.left_handle), int(strip.right_handle)
    return float(strip.frame_start), int(strip.frame_final_start), int(strip.frame_final_end)
