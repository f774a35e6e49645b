"""The CLI's previews (tools/preview.py) on a real generated take: an H.264
MP4 with the speech as AAC sound track (Blender's FFmpeg output), and face
close-ups at PocketSphinx phone instants."""
from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
sys.path.insert(0, str(REPO / "tools"))
import preview  # noqa: E402
from blender_helpers import add_strip, new_scene, run  # noqa: E402

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"


pytestmark = pytest.mark.usefixtures("registered_module")


def _mp4_duration(data: bytes) -> float:
    """Seconds from the movie header box (ISO/IEC 14496-12 ``mvhd``, version 0)."""
    i = data.index(b"mvhd")
    assert data[i + 4] == 0, "mvhd version 1 not handled"
    timescale, duration = struct.unpack(">II", data[i + 16:i + 24])
    return duration / timescale


def test_mp4_with_sound_and_face_sheet(tmp_path):
    scene, arm = new_scene(with_rig=False)
    add_strip(scene, ARCTIC)
    assert run() == {"FINISHED"}
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    take = arm.animation_data.action
    f0 = int(take["cospeech_frame_start"])
    objects = sorted(o.name for o in bpy.data.objects)
    path = preview.preview_mp4(scene, arm, f0, f0 + 29, ARCTIC, 0.0, tmp_path / "p.mp4")
    data = path.read_bytes()
    assert b"avc1" in data and b"mp4a" in data, "video or sound track missing"
    assert abs(_mp4_duration(data) - 1.0) < 0.1
    assert sorted(o.name for o in bpy.data.objects) == objects and "CoSpeechPreview" not in bpy.data.scenes
    pytest.importorskip("pocketsphinx")
    from PIL import Image
    from cospeech.model.features import load_audio
    picked = preview.phone_sheet(scene, arm, f0, load_audio(ARCTIC), 30.0, tmp_path / "phones.png")
    assert picked["bilabial"] and picked["open"]
    im = np.asarray(Image.open(tmp_path / "phones.png"))
    assert im.shape[0] == 240 * 3 and im.std() > 10      # rows: bilabial, open, rounded
