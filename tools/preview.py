"""Look at a take: an MP4 with the speech as its sound track (full body beside
a face close-up), a contact sheet of the body, and a contact sheet of face
close-ups at phone instants.  Rendered with Workbench and written by
Blender's own FFmpeg output (no extra encoder); used by ``tools/cospeech_cli.py``.

Runs inside a bpy process (the CLI's); frames are tiled with Pillow.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

#: Panel sizes (pixels): body and face close-up side by side in the MP4.
BODY_SIZE = (270, 480)
FACE_SIZE = (480, 480)
#: Face camera: in front of the head joint (Blender metres; the rig faces -Y), 85 mm lens,
#: for a character of :data:`FACE_FOR_HEIGHT` metres; scaled by the character's height.
FACE_OFFSET = (0.0, -0.66, -0.005)
FACE_FOR_HEIGHT = 1.75


def _look(scene) -> None:
    import bpy
    scene.render.engine = "BLENDER_WORKBENCH"
    world = scene.world or bpy.data.worlds.new("PreviewWorld")
    world.color = (0.82, 0.84, 0.88)
    scene.world = world
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "MATERIAL"
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.render.image_settings.file_format = "PNG"


def _camera(scene, name: str, lens: float):
    import bpy
    data = bpy.data.cameras.new(name)
    data.lens = lens
    cam = bpy.data.objects.new(name, data)
    scene.collection.objects.link(cam)
    cam.rotation_euler = (np.radians(90), 0.0, 0.0)        # looking along +Y at the rig's face
    return cam


def head_bone(arm) -> str:
    """The bone that carries the head: ``head`` on SMPL-X / FLAME rigs, else
    the bone the character's bone map drives from SMPL-X ``head`` (``Head``,
    ``J_Bip_C_Head``, ``head_01`` …).  Raises ``ValueError`` when there is none."""
    if "head" in arm.pose.bones:
        return "head"
    from cospeech.addon import rig
    info = rig.detect_rig(arm)
    for bone, src in (info.mapping or {}).items():
        if src[0] == "head" and src[2] == 0.0:
            return bone
    raise ValueError(f"armature '{arm.name}' has no head bone to aim the face camera at")


def _head_position(arm, bone: str) -> np.ndarray:
    return np.array(arm.matrix_world @ arm.pose.bones[bone].head)


def character_bounds(scene, arm, frames) -> tuple[np.ndarray, np.ndarray]:
    """World-space (min, max) corners of the evaluated meshes the armature
    deforms (parented or by an Armature modifier), over ``frames``."""
    import bpy
    from mathutils import Vector
    from cospeech.addon import rig
    meshes = rig.bound_meshes(arm) or [arm]
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for f in frames:
        scene.frame_set(int(f))
        dg = bpy.context.evaluated_depsgraph_get()
        for ob in meshes:
            e = ob.evaluated_get(dg)
            corners = np.array([e.matrix_world @ Vector(c) for c in e.bound_box])
            lo, hi = np.minimum(lo, corners.min(0)), np.maximum(hi, corners.max(0))
    return lo, hi


class _Cameras:
    """A full-body camera framing the character's evaluated bounds, and a face
    camera that follows its head bone (both look along +Y: characters face -Y)."""

    def __init__(self, scene, arm, frames=None):
        self.scene, self.arm = scene, arm
        self.head = head_bone(arm)
        self.body = _camera(scene, "PreviewBody", 50)
        lo, hi = character_bounds(scene, arm, frames if frames is not None else [scene.frame_current])
        centre, height = (lo + hi) / 2, max(float(hi[2] - lo[2]), 0.2)
        # 50 mm on a 36 mm sensor across the portrait frame's height: half-angle atan(18/50)
        self.body.location = (float(centre[0]), float(lo[1]) - 0.6 * height / (18 / 50), float(centre[2]))
        self.face = _camera(scene, "PreviewFace", 85)
        # a child-sized or giant character keeps its face the same size in the frame
        self.face_offset = np.array(FACE_OFFSET) * float(np.clip(height / FACE_FOR_HEIGHT, 0.2, 5.0))

    def render(self, frame: int, which: str, path: Path):
        import bpy
        from PIL import Image
        sc = self.scene
        sc.frame_set(int(frame))
        if which == "face":
            self.face.location = tuple(_head_position(self.arm, self.head) + self.face_offset)
        sc.camera = self.body if which == "body" else self.face
        sc.render.resolution_x, sc.render.resolution_y = BODY_SIZE if which == "body" else FACE_SIZE
        sc.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        return Image.open(path).convert("RGB")

    def remove(self):
        import bpy
        for ob in (self.body, self.face):
            bpy.data.objects.remove(ob)


def contact_sheet(scene, arm, f0: int, f1: int, path: Path, n: int = 8) -> Path:
    """``n`` evenly spaced full-body frames tiled in one PNG."""
    from PIL import Image
    _look(scene)
    frames = np.linspace(f0, f1, n).round()
    cams = _Cameras(scene, arm, frames)
    tmp = path.with_suffix(".frame.png")
    try:
        tiles = [cams.render(int(f), "body", tmp) for f in frames]
    finally:
        tmp.unlink(missing_ok=True)
        cams.remove()
    w, h = tiles[0].size
    sheet = Image.new("RGB", (w * n, h), "white")
    for i, im in enumerate(tiles):
        sheet.paste(im, (i * w, 0))
    sheet.save(path)
    return path


def phone_sheet(scene, arm, f0: int, wave: np.ndarray, fps: float, path: Path, per_class: int = 4) -> dict:
    """Face close-ups at ``per_class`` bilabial (P B M), open-vowel and rounded-vowel
    (UW UH OW AO W) centres (PocketSphinx ``allphone``, :mod:`model.phones`), spread
    over the clip, one row each, labelled with the phone and its time.  Returns
    ``{"bilabial": [...], "open": [...], "rounded": [...]}`` (frames used) or
    raises ``ImportError`` without PocketSphinx."""
    from PIL import Image, ImageDraw
    from cospeech.model.phones import BILABIALS, OPEN_VOWELS, allphone
    phones = allphone(wave)
    picked = {}
    rows = ("bilabial", "open", "rounded")
    for label, labels in zip(rows, (BILABIALS, OPEN_VOWELS, frozenset({"UW", "UH", "OW", "AO", "W"}))):
        cands = [p for p in phones if p.label in labels]
        idx = np.linspace(0, len(cands) - 1, min(per_class, len(cands))).round().astype(int) if cands else []
        picked[label] = [cands[i] for i in idx]
    _look(scene)
    cams = _Cameras(scene, arm)
    tmp = path.with_suffix(".frame.png")
    tiles = []
    try:
        for label in rows:
            for p in picked[label]:
                im = cams.render(f0 + int(round(p.centre * fps)), "face", tmp).resize((240, 240))
                ImageDraw.Draw(im).text((6, 4), f"{p.label} @ {p.centre:.2f} s", fill=(0, 0, 0))
                tiles.append((label, im))
    finally:
        tmp.unlink(missing_ok=True)
        cams.remove()
    cols = max(max(len(picked[r]) for r in rows), 1)
    sheet = Image.new("RGB", (240 * cols, 240 * len(rows)), "white")
    for row, label in enumerate(rows):
        for i, (_, im) in enumerate([t for t in tiles if t[0] == label]):
            sheet.paste(im, (i * 240, row * 240))
    sheet.save(path)
    return {k: [int(round(p.centre * fps)) for p in v] for k, v in picked.items()}


def preview_mp4(scene, arm, f0: int, f1: int, audio: Path, audio_offset_s: float, path: Path) -> Path:
    """Render frames ``f0..f1`` (body | face close-up) and write an H.264 MP4
    with ``audio`` (from ``audio_offset_s`` seconds) as its AAC sound track,
    through a temporary sequencer scene and Blender's FFmpeg output.

    Raises:
        RuntimeError: this Blender build has no FFmpeg output.
    """
    import bpy
    from PIL import Image
    fps = scene.render.fps / scene.render.fps_base
    _look(scene)
    cams = _Cameras(scene, arm, np.linspace(f0, f1, 8).round())
    tmpdir = Path(tempfile.mkdtemp(prefix="cospeech_preview_"))
    try:
        frames = []
        for i, f in enumerate(range(int(f0), int(f1) + 1)):
            body = cams.render(f, "body", tmpdir / "b.png")
            face = cams.render(f, "face", tmpdir / "f.png")
            tile = Image.new("RGB", (BODY_SIZE[0] + FACE_SIZE[0], FACE_SIZE[1]), "white")
            tile.paste(body, (0, 0))
            tile.paste(face, (BODY_SIZE[0], 0))
            name = f"{i:05d}.png"
            tile.save(tmpdir / name)
            frames.append(name)
        cams.remove()
        cams = None
        seq = bpy.data.scenes.new("CoSpeechPreview")
        try:
            _encode(seq, tmpdir, frames, fps, audio, audio_offset_s, path)
        finally:
            bpy.data.scenes.remove(seq)
    finally:
        if cams is not None:
            cams.remove()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def _encode(seq, tmpdir: Path, frames: list[str], fps: float, audio: Path, offset_s: float, path: Path) -> None:
    import bpy
    from cospeech.addon import compat
    r = seq.render
    r.fps, r.fps_base = int(round(fps)), 1.0
    r.resolution_x, r.resolution_y = BODY_SIZE[0] + FACE_SIZE[0], FACE_SIZE[1]
    r.resolution_percentage = 100
    try:
        if hasattr(r.image_settings, "media_type"):      # Blender 5.0+: pick video output first
            r.image_settings.media_type = "VIDEO"
        r.image_settings.file_format = "FFMPEG"
    except TypeError as exc:
        raise RuntimeError("this Blender has no FFmpeg video output") from exc
    r.ffmpeg.format = "MPEG4"
    r.ffmpeg.codec = "H264"
    r.ffmpeg.audio_codec = "AAC"
    r.ffmpeg.audio_channels = "MONO"
    seq.sequence_editor_create()
    strips = seq.sequence_editor.strips if hasattr(seq.sequence_editor, "strips") else seq.sequence_editor.sequences
    img = strips.new_image("frames", str(tmpdir / frames[0]), 1, 1)
    for name in frames[1:]:
        img.elements.append(name)
    skip = int(round(offset_s * fps))
    snd = compat.new_sound_strip(seq, "speech", str(audio), 2, 1 - skip)
    if skip > 0:                               # the take starts that far into the file
        snd.frame_offset_start = skip
    seq.frame_start, seq.frame_end = 1, len(frames)
    r.filepath = str(path)
    with bpy.context.temp_override(scene=seq):
        bpy.ops.render.render(animation=True, scene=seq.name)
