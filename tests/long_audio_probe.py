"""Generate from a long sound strip in a fresh process and print its peak memory.

    python long_audio_probe.py SPEECH_WAV MINUTES
Builds a MINUTES-long file by repeating SPEECH_WAV, puts it on the timeline,
runs cospeech.generate (1 sampling step) and prints
``FRAMES <n> PEAK_MIB <resident peak>``.  Used by test_operators.py.
"""
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from conftest import load_extension_package  # noqa: E402



def peak_mib() -> float:
    """This process's own peak resident memory in MiB: ``VmHWM`` of /proc/self/status
    (Linux; the high-water mark of this program's address space).  ``ru_maxrss`` is
    only the fallback: Linux carries the parent's resident size at fork/vfork over
    the exec into it, so a probe started from a large pytest process would report
    pytest's size (proc(5), getrusage(2))."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
