import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import time

import numpy as np
import pytest
import soundfile as sf

from model.features import FEATURE_DIM, AudioError, audio_features, load_audio, num_frames, rms_envelope

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
NEEDS_DATA = pytest.mark.skipif(not (SHARED / "beat2").is_dir(),
                                reason=f"BEAT2 sample data not found at {SHARED} (not shipped with the repo)")


@pytest.mark.parametrize("seconds", [0.01, 1.0, 3.3333, 10.0])
def test_frame_count_is_ceil_at_30fps(seconds):
    n = int(round(seconds * 16000))
    rng = np.random.default_rng(0)
    f = audio_features(rng.standard_normal(n).astype(np.float32) * 0.1)
    assert f.shape == (int(np.ceil(n / 16000 * 30 - 1e-9)), FEATURE_DIM) == (num_frames(n), FEATURE_DIM)
    assert f.dtype == np.float32


def test_stereo_44k_file(tmp_path):
    t = np.arange(int(44100 * 2.5)) / 44100
    left = 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    stereo = np.stack([left, 0.5 * left], axis=1).astype(np.float32)
    p = tmp_path / "s.wav"
    sf.write(p, stereo, 44100)
    w = load_audio(p)
    assert w.ndim == 1 and w.dtype == np.float32 and abs(len(w) - 40000) <= 2
    f = audio_features(w)
    assert f.shape == (75, FEATURE_DIM) and np.isfinite(f).all()
    # passing the 44.1 kHz stereo array directly gives the same frame count
    assert audio_features(stereo, 44100).shape == (75, FEATURE_DIM)


def test_silence_and_constant_no_nan():
    for wave in (np.zeros(32000, np.float32), np.full(32000, 0.2, np.float32)):
        f = audio_features(wave)
        assert f.shape == (60, FEATURE_DIM) and np.isfinite(f).all()


def test_per_clip_normalisation_removes_gain():
    rng = np.random.default_rng(1)
    w = (rng.standard_normal(48000) * np.repeat(rng.random(30), 1600)).astype(np.float32)
    a, b = audio_features(w), audio_features(w * 10)
    assert np.allclose(a.mean(0), 0, atol=1e-4)
    assert np.allclose(a, b, atol=0.05)


def test_bad_files(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav file")
    with pytest.raises(AudioError):
        load_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError):
        load_audio(empty)
    with pytest.raises(AudioError):
        audio_features(np.zeros(0, np.float32))


@NEEDS_DATA
def test_alignment_jaw_vs_rms_on_capture():
    from model.training.evaluate import lip_r
    from model.motion import MotionClip
    clip = MotionClip.load(SHARED / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz")
    w = load_audio(SHARED / "beat2" / "wave16k" / "2_scott_0_1_1.wav")
    assert lip_r(clip, rms_envelope(w)) > 0.2


@NEEDS_DATA
def test_features_fast_and_finite_on_real_speech():
    w = load_audio(SHARED / "beat2" / "wave16k" / "2_scott_0_1_1.wav")
    audio_features(w[:16000])  # warm-up (librosa/numba caches)
    t0 = time.perf_counter()
    f = audio_features(w)
    dt = time.perf_counter() - t0
    assert f.shape == (num_frames(len(w)), FEATURE_DIM) and np.isfinite(f).all()
    assert dt < 5.0, f"features for 64 s took {dt:.2f} s"


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (22050, 1), (48000, 2)])
def test_fast_decoder_equals_librosa_load(tmp_path, rate, channels):
    """load_audio reads libsndfile formats without librosa.load (start-up time)
    and must return exactly what librosa.load(sr=16000, mono=True) returns."""
    import librosa
    import soxr
    from model.features import _decode_soundfile
    src = pathlib.Path(__file__).resolve().parents[1] / "tools" / "demo_audio" / "arctic_a0007.wav"
    wave, sr = sf.read(src, dtype="float32")
    wave = soxr.resample(wave, sr, rate)
    if channels == 2:
        wave = np.stack([wave, 0.5 * np.roll(wave, 37)], 1)
    path = tmp_path / f"speech_{rate}.flac"
    sf.write(path, wave, rate)
    ref = librosa.load(path, sr=16000, mono=True)[0]
    ours = _decode_soundfile(str(path), 16000)
    assert ours.dtype == np.float32 and ours.shape == ref.shape and np.array_equal(ours, ref)
    assert np.array_equal(load_audio(path), ref)
