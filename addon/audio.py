"""Sound strips: which one the user means, and which stretch of its file
Blender plays at which scene frame.

Timing (Blender Python API, ``bpy.types.SoundStrip``): the strip's content
starts at ``frame_start`` (float); ``frame_offset_start`` trims the head, so
the first frame heard is ``frame_final_start`` and the last heard frame is
``frame_final_end - 1``; ``sound_offset`` (seconds) shifts the file under
the strip.  At scene frame F the file plays at time
``(F - frame_start) / fps + sound_offset``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import bpy

from . import compat


class StripError(ValueError):
    """No usable sound strip; the message tells the user what to do."""


@dataclass
class AudioSpan:
    """The stretch of an audio file heard over a frame range.

    Attributes:
        path: absolute file path.
        t0, t1: seconds into the file heard at ``frame_start`` and at the
            end of ``frame_end`` (exclusive end time).
        frame_start, frame_end: first and last scene frame heard (inclusive).
        strip_name: the sound strip's name.
        fps: scene frames per second.
    """

    path: str
    t0: float
    t1: float
    frame_start: int
    frame_end: int
    strip_name: str
    fps: float


def pick_sound_strip(scene):
    """The sound strip to use: the active strip if it is a selected sound
    strip, else the only selected sound strip, else the only sound strip.

    Raises:
        StripError: none, or several candidates and none active.
    """
    strips = [s for s in compat.sequencer_strips(scene) if s.type == "SOUND"]
    if not strips:
        raise StripError("No sound strip in the Video Sequencer: add your speech clip "
                         "(Add ▸ Sound) and select it.")
    ed = scene.sequence_editor
    active = getattr(ed, "active_strip", None)
    selected = [s for s in strips if s.select]
    if active is not None and active.type == "SOUND" and (active.select or not selected):
        return active
    if len(selected) == 1:
        return selected[0]
    if len(selected) > 1:
        raise StripError(f"{len(selected)} sound strips are selected: select just one "
                         "(or make one active) to generate from.")
    if len(strips) == 1:
        return strips[0]
    raise StripError("Several sound strips and none selected: select the speech strip to use.")


def strip_span(scene, strip) -> AudioSpan:
    """What ``strip`` plays, in file seconds and scene frames.

    Raises:
        StripError: the strip's file is missing, or the strip is trimmed to nothing.
    """
    sound = strip.sound
    if sound is None:
        raise StripError(f"Sound strip '{strip.name}' has no sound data.")
    path = bpy.path.abspath(sound.filepath, library=sound.library)
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise StripError(f"Sound strip '{strip.name}': file not found: {path}")
    fps = scene.render.fps / scene.render.fps_base
    first, end = int(strip.frame_final_start), int(strip.frame_final_end)
    if end <= first:
        raise StripError(f"Sound strip '{strip.name}' is trimmed to zero length.")
    offset = float(getattr(strip, "sound_offset", 0.0))
    t0 = (first - strip.frame_start) / fps + offset
    t1 = (end - strip.frame_start) / fps + offset
    return AudioSpan(path, max(0.0, t0), t1, first, end - 1, strip.name, fps)
