"""Generate from a long sound strip in a fresh process and print its peak memory.

    python long_audio_probe.py SPEECH_WAV MINUTES
Builds a MINUTES-long file by repeating SPEECH_WAV, puts it on the timeline,
runs cospeech.generate (1 sampling step) and prints
``FRAMES <n> PEAK_MIB <resident peak>``.  Used by test_operators.py.
"""
import sys
import tempfile
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import load_extension_package  # noqa: E402
from model.training.benchmark import peak_rss_mib as peak_mib  # noqa: E402

src, minutes = sys.argv[1], float(sys.argv[2])
wave, sr = sf.read(src, dtype="float32")
n = int(minutes * 60 * sr)
path = Path(tempfile.mkdtemp()) / "long.wav"
with sf.SoundFile(path, "w", sr, 1, "PCM_16") as f:   # written in pieces: no 30-min array here
    done = 0
    while done < n:
        piece = wave[: min(len(wave), n - done)]
        f.write(piece)
        done += len(piece)
del wave

import bpy  # noqa: E402

pkg = load_extension_package()
pkg.register()
try:
    from cospeech_cli import scene_with_speech
    scene, arm = scene_with_speech(path, 30)
    scene.cospeech.steps = 1
    assert bpy.ops.cospeech.generate() == {"FINISHED"}
    act = arm.animation_data.action
    frames = act["cospeech_frame_end"] - act["cospeech_frame_start"] + 1
    print(f"FRAMES {frames} PEAK_MIB {peak_mib():.0f}")
finally:
    pkg.unregister()
    path.unlink()
