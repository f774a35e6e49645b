"""Sound strips: which one the user means, and which stretch of its file
Blender plays at which scene frame.

Timing (Blender Python API, ``bpy.types.SoundStrip``): the strip's content
starts at ``frame_start`` (float); ``frame_offset_start`` trims the head, so
the first frame heard is ``frame_final_start`` and the last heard frame is
``frame_final_end - 1``; ``sound_offset`` (seconds) shifts the file under
the strip.  At scene frame F the file plays at time
``(F - frame_start) / fps + sound_offset``.  A strip inside meta strips is
heard only where every enclosing meta is (``Strip.parent_meta()``), and not
at all when it, an enclosing meta or its channel is muted.
"""
from __future__ import annotations

import math
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
        path: absolute file path (may be gone when ``sound_name`` is packed).
        t0, t1: seconds into the file heard at ``frame_start`` and at the
            end of ``frame_end`` (exclusive end time); ``t0 >= 0``.
        frame_start, frame_end: first and last scene frame heard (inclusive).
        strip_name: the sound strip's name.
        fps: scene frames per second.
        sound_name: the ``bpy.data.sounds`` datablock, whose packed data
            (``Sound.packed_file.data``) is read when the file is gone.
    """

    path: str
    t0: float
    t1: float
    frame_start: int
    frame_end: int
    strip_name: str
    fps: float
    sound_name: str = ""

    @property
    def num_frames(self) -> int:
        """Scene frames heard, ``frame_end - frame_start + 1``."""
        return self.frame_end - self.frame_start + 1


def _metas(strip) -> list:
    """Enclosing meta strips of ``strip``, innermost first."""
    out = []
    parent = strip.parent_meta() if hasattr(strip, "parent_meta") else None
    while parent is not None:
        out.append(parent)
        parent = parent.parent_meta()
    return out


def _channel_muted(scene, strip, meta) -> bool:
    owner = meta if meta is not None else scene.sequence_editor
    channels = getattr(owner, "channels", None)
    if channels is None or strip.channel >= len(channels):
        return False
    return bool(channels[strip.channel].mute)


def is_muted(scene, strip) -> bool:
    """True when Blender does not play ``strip``: it, an enclosing meta strip,
    or the channel of any of them is muted."""
    chain = [strip] + _metas(strip)
    for i, s in enumerate(chain):
        parent = chain[i + 1] if i + 1 < len(chain) else None
        if s.mute or _channel_muted(scene, s, parent):
            return True
    return False


def pick_sound_strip(scene):
    """The sound strip to use, among the strips Blender plays (muted strips,
    strips in muted metas or muted channels are ignored): the active strip
    if it is a selected sound strip, else the only selected sound strip,
    else the only sound strip.

    Raises:
        StripError: none, only muted ones, or several candidates and none active.
    """
    every = [s for s in compat.sequencer_strips(scene) if s.type == "SOUND"]
    if not every:
        raise StripError("No sound strip in the Video Sequencer: add your speech clip "
                         "(Add ▸ Sound) and select it.")
    strips = [s for s in every if not is_muted(scene, s)]
    if not strips:
        names = ", ".join(f"'{s.name}'" for s in every[:4])
        raise StripError(f"Every sound strip is muted ({names}): unmute the speech strip "
                         "(or its meta strip / channel) to generate from it.")
    ed = scene.sequence_editor
    active = getattr(ed, "active_strip", None)
    selected = [s for s in strips if s.select]
    if active is not None and active in strips and (active.select or not selected):
        return active
    if len(selected) == 1:
        return selected[0]
    if len(selected) > 1:
        raise StripError(f"{len(selected)} sound strips are selected: select just one "
                         "(or make one active) to generate from.")
    if len(strips) == 1:
        return strips[0]
    raise StripError("Several sound strips and none selected: select the speech strip to use.")


def sound_file(strip) -> tuple[str, str]:
    """(absolute file path, packed sound name or "") of a sound strip.

    Raises:
        StripError: no sound data, or the file is gone and the sound is not packed.
    """
    sound = strip.sound
    if sound is None:
        raise StripError(f"Sound strip '{strip.name}' has no sound data.")
    path = os.path.abspath(bpy.path.abspath(sound.filepath, library=sound.library))
    if sound.packed_file is not None:
        return path, sound.name
    if not os.path.isfile(path):
        raise StripError(f"Sound strip '{strip.name}': file not found: {path}")
    return path, ""


def strip_span(scene, strip) -> AudioSpan:
    """What ``strip`` plays, in file seconds and scene frames.

    The heard frames are the strip's final (trimmed) range, clipped to every
    enclosing meta strip's final range and to the frames where the file has
    begun (a negative ``sound_offset`` delays file time 0 by ``-offset`` s).

    Raises:
        StripError: the strip's file is missing (and not packed), or nothing
            of the strip is heard.
    """
    path, packed = sound_file(strip)
    fps = scene.render.fps / scene.render.fps_base
    content_start, first, end = compat.strip_timing(strip)
    for meta in _metas(strip):
        _c, m_first, m_end = compat.strip_timing(meta)
        first, end = max(first, m_first), min(end, m_end)
    offset = float(getattr(strip, "sound_offset", 0.0))
    # the first frame at which the file has started: (F - frame_start)/fps + offset >= 0
    file_start = math.ceil(content_start - offset * fps - 1e-6)
    first = max(first, file_start)
    if end <= first:
        raise StripError(f"Sound strip '{strip.name}' is not heard on any frame "
                         "(trimmed to nothing, outside its meta strip, or offset past its end).")
    t0 = (first - content_start) / fps + offset
    t1 = (end - content_start) / fps + offset
    return AudioSpan(path, max(0.0, t0), t1, first, end - 1, strip.name, fps, packed)


def packed_bytes(sound_name: str) -> bytes | None:
    """The packed data of sound ``sound_name`` (``Sound.packed_file.data``), or None."""
    sound = bpy.data.sounds.get(sound_name) if sound_name else None
    if sound is None or sound.packed_file is None:
        return None
    return bytes(sound.packed_file.data)
