"""Run inside a *fresh* Blender Python (a venv with only the bpy wheel):
install the built extension zip through Blender's extension mechanism,
enable it, and generate a take from a sound strip.  Used by test_install.py.

    python package_smoke.py EXTENSION_ZIP SPEECH_WAV [--expect-refused]

Prints ``BLENDER <version>``, then ``TAKE <name> <first frame> <last frame>``
on success.  With ``--expect-refused`` the zip must be refused (a zip for
other Blender versions): Blender's own message is printed, exit code 0 when
nothing got installed.
"""
import importlib.util
import sys

import bpy

zip_path, wav = sys.argv[1], sys.argv[2]
expect_refused = "--expect-refused" in sys.argv[3:]
print("BLENDER", bpy.app.version_string, "Python", sys.version.split()[0])
assert importlib.util.find_spec("torch") is None, "this check needs a Python without torch"
res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                               enable_on_install=True)
assert res == {"FINISHED"}, res
if expect_refused:
    # Blender prints why ("doesn't meet the minimum supported version" / "must be
    # less than the maximum version") and installs nothing.
    assert "bl_ext.user_default.cospeech" not in bpy.context.preferences.addons, "installed anyway"
    print("REFUSED")
    raise SystemExit(0)
assert "bl_ext.user_default.cospeech" in bpy.context.preferences.addons
pkg = sys.modules["bl_ext.user_default.cospeech"]
print("installed at", pkg.__file__)
if not bpy.ops.cospeech.generate.poll():
    from bl_ext.user_default.cospeech.operators import generate_ops
    raise SystemExit("generate disabled: " + generate_ops.missing_dependencies())

bpy.ops.wm.read_homefile(use_empty=True)   # empty scene; preferences (enabled extensions) kept
scene = bpy.context.scene
scene.render.fps = 30
ed = scene.sequence_editor_create()
strip = (ed.strips if hasattr(ed, "strips") else ed.sequences).new_sound("speech", wav, 1, 1)
ed.active_strip = strip
bpy.ops.cospeech.add_default_rig()
scene.cospeech.steps = 4
assert bpy.ops.cospeech.generate() == {"FINISHED"}
act = bpy.context.active_object.animation_data.action
print("TAKE", act.name, act["cospeech_frame_start"], act["cospeech_frame_end"])
print("FACE", act.get("cospeech_arkit", "none"))
# the phone decoder from the zip's pocketsphinx wheel, in-process and in a child interpreter
from bl_ext.user_default.cospeech.model import features as _features, phones as _phones  # noqa: E402
_w = _features.load_audio(wav)
print("PHONES", len(_phones.allphone(_w)), len(_phones._phones(_phones.request(_phones._pcm16(_w)))))
# The bpy module hangs at exit with Python classes registered: disable first.
bpy.ops.preferences.addon_disable(module="bl_ext.user_default.cospeech")
