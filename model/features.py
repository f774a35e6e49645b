"""Audio loading and per-frame speech features at the motion frame rate (30 fps).

Pure numpy + librosa; never imports bpy.

Feature layout (columns of :func:`audio_features`, ``FEATURE_DIM`` = 48):

====== ============================================================
cols   feature
====== ============================================================
0-39   log-mel power, 40 bands, 0-8 kHz (``librosa.feature.melspectrogram``,
       n_fft 512, hop 160 = 10 ms), in dB (``librosa.power_to_db``)
40     onset strength (``librosa.onset.onset_strength`` on the same mel)
41     RMS energy in dB (``librosa.feature.rms``, frame 512)
42     delta of the RMS dB curve (``librosa.feature.delta``)
43     log F0 from YIN (``librosa.yin``, 65-400 Hz); unvoiced frames get
       the clip's median voiced log F0
44     voicing: 1 where the frame is loud (RMS within 35 dB of the clip's
       95th percentile) and periodic (zero-crossing rate < 0.25 and spectral
       flatness < 0.3), else 0 -- a fast heuristic instead of ``pyin``
45     zero-crossing rate (``librosa.feature.zero_crossing_rate``)
46     spectral flatness (``librosa.feature.spectral_flatness``)
47     loudness relative to the clip's loudest frame, dB/60, clipped to [-1, 0]
====== ============================================================

All features are first computed at 100 Hz (hop 10 ms, centred frames) and
then linearly interpolated to the motion frame times ``k / 30`` s, so frame
``k`` of the output describes the audio around time ``k / 30`` -- the same
instant as motion frame ``k`` (BEAT2 audio and motion both start at t = 0).

Every column is then normalised per clip (zero mean, unit standard
deviation), so the absolute level, microphone and speaker's pitch range do
not leak into the model (DESIGN.md, "Features must not leak the speaker").
Constant columns (e.g. digital silence) become zeros, never NaN.

Phonetic features (15 viseme one-hots from PocketSphinx phones,
:func:`model.phones.viseme_features`) are appended by
:func:`network_features` for networks trained with them
(``NetConfig.visemes``); they are 0/1 columns, not normalised.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np

SAMPLE_RATE = 16000
FPS = 30.0
N_MELS = 40
HOP = 160            # 10 ms at 16 kHz
N_FFT = 512
FEATURE_DIM = N_MELS + 8
FEATURE_NAMES: tuple[str, ...] = tuple(f"mel{i:02d}" for i in range(N_MELS)) + (
    "onset", "rms_db", "rms_db_delta", "log_f0", "voiced", "zcr", "flatness", "rel_loudness")
#: The loudness columns (per-clip normalised) that the network's phonetic mouth term
#: and the evaluator's speaker-independent ridge inputs read beside the phones.
LOUDNESS_NAMES: tuple[str, ...] = ("rms_db", "rms_db_delta", "voiced", "rel_loudness")
_STD_FLOOR = 1e-4


class AudioError(ValueError):
    """An audio file is missing, unreadable, or contains no samples."""


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read any audio file librosa/soundfile/audioread can decode as mono float32.

    Args:
        path: wav / flac / ogg / mp3 ... at any sample rate, mono or multi-channel.
        sr: output sample rate in Hz (default 16 kHz, the model's rate).
    Returns:
        (N,) float32 samples in [-1, 1] at ``sr`` Hz, channels averaged
        (``librosa.load(mono=True)``), resampled with librosa's default
        (soxr_hq) resampler.
    Raises:
        AudioError: the file does not exist, cannot be decoded, has no
            samples, or contains non-finite samples.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"Audio file not found: {path}")
    return _decode(path, sr, path)


def load_audio_bytes(data: bytes, suffix: str = ".wav", label: str = "audio data",
                     sr: int = SAMPLE_RATE) -> np.ndarray:
    """:func:`load_audio` for an encoded file held in memory (e.g. a sound
    packed into a .blend).  The bytes go through a temporary file with
    ``suffix`` so every decoder librosa falls back to (audioread) can read them.

    Raises:
        AudioError: as :func:`load_audio`; messages name ``label``.
    """
    import tempfile
    fd, tmp = tempfile.mkstemp(suffix=suffix or ".wav", prefix="cospeech_")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return _decode(tmp, sr, label)
    finally:
        os.unlink(tmp)


def _decode_soundfile(path: str, sr: int) -> np.ndarray:
    """What ``librosa.load(path, sr=sr, mono=True)`` returns for files libsndfile
    reads (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1): float32 samples,
    channel mean, soxr "HQ" resampling fixed to ``ceil(N * sr / file_sr)`` samples -- librosa's own default path
    (librosa 0.10 ``core/audio.py``: ``sf.read``, ``to_mono``, ``res_type="soxr_hq"``),
    without importing librosa.core.audio (scipy.signal, numba: ~2 s of the
    first Generate's start-up)."""
    import soundfile as sf
    import soxr
    data, file_sr = sf.read(path, dtype="float32", always_2d=True)
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if file_sr != sr:
        if not np.all(np.isfinite(wave)):
            raise ValueError("Audio buffer is not finite everywhere")
        n = int(np.ceil(len(wave) * float(sr) / file_sr))      # librosa.resample(fix=True)
        wave = soxr.resample(wave, file_sr, sr, quality="soxr_hq")
        wave = np.pad(wave, (0, max(0, n - len(wave))))[:n]
    return np.ascontiguousarray(wave, np.float32)


def _decode(path: str, sr: int, label: str) -> np.ndarray:
    try:
        try:
            wave = _decode_soundfile(path, sr)
        except ValueError:
            raise
        except Exception:   # a format libsndfile cannot read: librosa falls back to audioread
            import librosa
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # audioread fallback warnings
                wave, _ = librosa.load(path, sr=sr, mono=True)
    except Exception as exc:  # soundfile.LibsndfileError, audioread.NoBackendError, EOFError, ...
        if "not finite" in str(exc):   # librosa.util.valid_audio while resampling
            raise AudioError(f"{label} contains NaN or infinite samples: the file is damaged "
                             "or not normalised audio; re-export it as 16/24-bit PCM") from exc
        why = f"{type(exc).__name__}: {exc}" if str(exc).strip() else type(exc).__name__
        raise AudioError(f"Cannot read {label}: not a supported audio file, or damaged ({why})") from exc
    wave = np.asarray(wave, np.float32).reshape(-1)
    if wave.size == 0:
        raise AudioError(f"{label} contains no samples")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{label} contains NaN or infinite samples: the file is damaged "
                         "or not normalised audio; re-export it as 16/24-bit PCM")
    return wave


def num_frames(num_samples: int, sr: int = SAMPLE_RATE, fps: float = FPS) -> int:
    """Motion frames covering ``num_samples`` audio samples: ``ceil(N / sr * fps)``."""
    return int(math.ceil(num_samples / sr * fps - 1e-9))


def _to_mono16k(wave: np.ndarray, sr: int) -> np.ndarray:
    import librosa
    wave = np.asarray(wave, np.float32)
    if wave.ndim == 2:  # (N, C) or (C, N): average the channel axis (the shorter one)
        wave = wave.mean(axis=int(np.argmin(wave.shape)))
    wave = wave.reshape(-1)
    if wave.size == 0:
        raise AudioError("Audio contains no samples")
    if not np.all(np.isfinite(wave)):
        raise AudioError("Audio contains NaN or infinite samples")
    if sr != SAMPLE_RATE:
        wave = librosa.resample(wave, orig_sr=sr, target_sr=SAMPLE_RATE).astype(np.float32)
    return wave


CHUNK_FRAMES = 6000   # 60 s of 100 Hz analysis frames per chunk
MARGIN_FRAMES = 50    # 0.5 s of context each side of a chunk


def _frame_features(y: np.ndarray) -> tuple[np.ndarray, ...]:
    """100 Hz frame-level features of one (chunk of) 16 kHz signal, centred frames."""
    import librosa
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP,
                                         n_mels=N_MELS, fmax=SAMPLE_RATE / 2)
    logmel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    onset = librosa.onset.onset_strength(S=logmel, sr=SAMPLE_RATE, hop_length=HOP)
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)[0]
    rms_db = 20.0 * np.log10(np.maximum(rms, 1e-5))
    d_rms = librosa.feature.delta(rms_db, width=5, mode="nearest") if rms_db.size >= 5 else np.zeros_like(rms_db)
    f0 = librosa.yin(y, fmin=65.0, fmax=400.0, sr=SAMPLE_RATE, frame_length=1024, hop_length=HOP)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)[0]
    flat = librosa.feature.spectral_flatness(y=y, n_fft=N_FFT, hop_length=HOP)[0]
    n = min(logmel.shape[1], onset.size, rms_db.size, f0.size, zcr.size, flat.size)
    return logmel[:, :n], onset[:n], rms_db[:n], d_rms[:n], f0[:n], zcr[:n], flat[:n]


def raw_audio_features(wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Un-normalised features (see module docstring) at 30 fps.

    Args:
        wave: (N,) or (N, C) / (C, N) float samples at ``sr`` Hz.
        sr: sample rate in Hz; resampled to 16 kHz first when different.
    Returns:
        (T, FEATURE_DIM) float32 with ``T = ceil(N / sr * 30)``.
    Raises:
        AudioError: empty or non-finite input.
    """
    n_in = np.asarray(wave).shape[0] if np.asarray(wave).ndim == 1 else max(np.asarray(wave).shape)
    T = num_frames(n_in, sr)
    y = _to_mono16k(wave, sr)
    if y.size < N_FFT:  # very short clips: pad so every librosa call has a frame
        y = np.pad(y, (0, N_FFT - y.size))
    # Long audio is analysed in chunks (with margins) so memory stays bounded:
    # frame-level quantities are local, clip-level ones are computed after stitching.
    n_total = 1 + y.size // HOP  # centred librosa frames
    parts = []
    for f0_ in range(0, n_total, CHUNK_FRAMES):
        f1_ = min(n_total, f0_ + CHUNK_FRAMES)
        a = max(0, f0_ - MARGIN_FRAMES)
        b = min(n_total, f1_ + MARGIN_FRAMES)
        seg = y[a * HOP:(b - 1) * HOP + 1] if b < n_total else y[a * HOP:]
        fr = _frame_features(seg)
        parts.append([p_[..., f0_ - a:f1_ - a] for p_ in fr])
    logmel, onset, rms_db, d_rms, f0, zcr, flat = (np.concatenate([pt[i] for pt in parts], axis=-1) for i in range(7))
    n = min(logmel.shape[1], onset.size, rms_db.size, f0.size, zcr.size, flat.size)
    loud_ref = np.percentile(rms_db[:n], 95)
    voiced = ((rms_db[:n] > loud_ref - 35.0) & (zcr[:n] < 0.25) & (flat[:n] < 0.3)).astype(np.float32)
    logf0 = np.log(np.maximum(f0[:n], 1.0))
    fill = np.median(logf0[voiced > 0]) if voiced.any() else np.log(150.0)
    logf0 = np.where(voiced > 0, logf0, fill)
    rel = np.clip((rms_db[:n] - rms_db[:n].max()) / 60.0, -1.0, 0.0)
    feats100 = np.concatenate([logmel[:, :n], onset[None, :n], rms_db[None, :n], d_rms[None, :n],
                               logf0[None], voiced[None], zcr[None, :n], flat[None, :n], rel[None]],
                              axis=0).T  # (n, D), frame i at time i * HOP / 16000
    t_src = np.arange(n) * (HOP / SAMPLE_RATE)
    t_dst = np.arange(T) / FPS
    out = np.empty((T, FEATURE_DIM), np.float32)
    for c in range(FEATURE_DIM):
        out[:, c] = np.interp(t_dst, t_src, feats100[:, c])
    return out


def normalise_per_clip(feats: np.ndarray) -> np.ndarray:
    """Zero mean, unit std per column over the clip; constant columns -> 0 (never NaN)."""
    feats = np.asarray(feats, np.float32)
    mean = feats.mean(axis=0, keepdims=True)
    std = feats.std(axis=0, keepdims=True)
    out = np.where(std > _STD_FLOOR, (feats - mean) / np.maximum(std, _STD_FLOOR), 0.0)
    return out.astype(np.float32)


def audio_features(wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Per-clip normalised speech features at exactly 30 fps.

    Args:
        wave: (N,) float samples (or (N, C)/(C, N) multi-channel) at ``sr`` Hz.
        sr: sample rate in Hz (resampled to 16 kHz internally).
    Returns:
        (T, FEATURE_DIM) float32, ``T = ceil(N / sr * 30)``; row ``k`` describes
        the audio around ``k / 30`` s.  Each column has zero mean and unit std
        over the clip (constant columns are 0).  Finite for silence.
    Raises:
        AudioError: empty or non-finite input.
    """
    return normalise_per_clip(raw_audio_features(wave, sr))


#: :func:`network_features`: frames this many dB below the clip's 95th-percentile
#: RMS are silence (viseme ``sil``) whatever the phone decoder says.
SILENT_DB = 50.0
#: ... and so are frames below this absolute level (dBFS; digital silence is -100).
SILENT_FLOOR_DB = -80.0


def network_features(wave: np.ndarray, sr: int = SAMPLE_RATE, visemes: bool = False, phones: bool = False,
                     text: str | None = None, report: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The network's audio input and the raw acoustic features it came from.

    Args:
        wave: (N,) or multi-channel float audio at ``sr`` Hz.
        visemes: append the 15 viseme one-hot columns
            (:func:`model.phones.viseme_features`) after the 48 normalised ones.
        phones: with ``visemes``, also the 39 ARPAbet one-hots after them
            (``NetConfig.phones``).
        text: the dialogue's text: phones aligned to it (``model.align``),
            else decoded; ``report["phones"]`` says which (:func:`model.phones.viseme_features`).
    Returns:
        (raw, feats): raw (T, 48) float32 as :func:`raw_audio_features`;
        feats (T, 48), (T, 63) or (T, 102) float32, T = ``num_frames(N, sr)``.  Frames
        :data:`SILENT_DB` below the clip's loud level or under
        :data:`SILENT_FLOOR_DB` get viseme ``sil`` (and no phone); with
        no decodable phones at all the viseme columns stay zero (the
        network's "no phones" input).
    Raises:
        AudioError: as :func:`raw_audio_features`.
    """
    if not visemes:
        raw = raw_audio_features(wave, sr)
        return raw, normalise_per_clip(raw)
    from concurrent.futures import ThreadPoolExecutor

    from .phones import viseme_features
    y = _to_mono16k(wave, sr)
    with ThreadPoolExecutor(1) as ex:    # phones decode (in child processes when long) beside the acoustics
        job = ex.submit(viseme_features, y, num_frames(len(y)), with_phones=phones, text=text, report=report)
        raw = raw_audio_features(wave, sr)
        vis = job.result()
    feats = normalise_per_clip(raw)
    vis = np.pad(vis, ((0, max(0, len(feats) - len(vis))), (0, 0)), mode="edge")[:len(feats)]
    rms_db = raw[:, FEATURE_NAMES.index("rms_db")]
    # the decoder reads digital silence as /s/: quiet frames are sil
    quiet = (rms_db < np.percentile(rms_db, 95) - SILENT_DB) | (rms_db < SILENT_FLOOR_DB)
    if vis.any():
        vis[quiet] = 0.0
        vis[quiet, 0] = 1.0                                   # sil
    return raw, np.concatenate([feats, vis], axis=1)


def rms_envelope(wave: np.ndarray, sr: int = SAMPLE_RATE, frame_length: int = 1600) -> np.ndarray:
    """Linear RMS envelope at 30 fps (the lip_r / exp_r reference curve of DESIGN.md).

    Returns:
        (T,) float32, ``T = ceil(N / sr * 30)``; ``librosa.feature.rms`` with a
        100 ms frame (1600 samples, centred) and hop 160 at 16 kHz,
        interpolated to ``k / 30`` s.  The 100 ms frame was chosen because it
        reproduces DESIGN.md's capture numbers best (lip_r 0.295 vs 0.29,
        exp_r 0.218 vs 0.22; a 32 ms frame gives 0.315 / 0.206).
    """
    import librosa
    n_in = np.asarray(wave).shape[0] if np.asarray(wave).ndim == 1 else max(np.asarray(wave).shape)
    T = num_frames(n_in, sr)
    y = _to_mono16k(wave, sr)
    rms = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=HOP)[0]
    return np.interp(np.arange(T) / FPS, np.arange(rms.size) * HOP / SAMPLE_RATE, rms).astype(np.float32)


#: Lip Closure cue (:func:`closure_cue`): window of the local mean log energy
#: (frames at 30 fps, ±0.15 s), dip depth (natural log of energy) that counts
#: as a full closure, and the speech gate.  Chosen on the dev clips
#: (``python -m model.training.lipsync_eval --closure``); not tuned on the held-out capture.
CLOSURE_WINDOW = 9
CLOSURE_DIP_FULL = 2.0


def _chunked_rms(y: np.ndarray, frame: int, hop: int, chunk_frames: int = 6000) -> np.ndarray:
    """``librosa.feature.rms(y, frame_length=frame, hop_length=hop)`` (centred,
    zero-padded frames), computed 60 s at a time: the same values without
    framing the whole signal at once (400 x 180,000 floats for 30 minutes)."""
    import librosa
    half = frame // 2
    n = 1 + len(y) // hop
    out = np.empty(n, np.float32)
    for f0 in range(0, n, chunk_frames):
        f1 = min(n, f0 + chunk_frames)
        a, b = f0 * hop - half, (f1 - 1) * hop - half + frame      # samples of frames f0 .. f1-1
        seg = np.zeros(b - a, np.float32)
        lo, hi = max(a, 0), min(b, len(y))
        if hi > lo:
            seg[lo - a:hi - a] = y[lo:hi]
        out[f0:f1] = librosa.feature.rms(y=seg, frame_length=frame, hop_length=hop, center=False)[0]
    return out


def closure_cue(wave: np.ndarray, sr: int = SAMPLE_RATE, num_frames_out: int | None = None) -> np.ndarray:
    """(T,) float32 in [0, 1] at 30 fps: how much each frame is a closure of the speech.

    Stops (P B T D K G) are silent during their closure and nasals (M N)
    are weak: both are dips of the short-time energy between the vowel peaks
    (Stevens, *Acoustic Phonetics*, MIT Press 1998, ch. 7 and 9).  The cue is
    (local mean − frame) of the log energy (25 ms ``librosa.feature.rms``
    frames, hop 10 ms, mean over ±0.15 s), :data:`CLOSURE_DIP_FULL` nats =
    1, gated to speech (energy above the clip's 30th percentile, majority
    over 0.5 s) and Gaussian-smoothed (σ 1 frame).  The *Lip Closure* dial
    (``model/adjust.py``) closes the jaw by it.

    Args:
        wave: (N,) or (N, C) audio; ``sr`` its rate.
        num_frames_out: T (default: :func:`num_frames` of the audio).
    """
    import librosa
    from scipy.ndimage import gaussian_filter1d, uniform_filter1d
    w = np.asarray(wave)
    T = num_frames(w.shape[0] if w.ndim == 1 else max(w.shape), sr) if num_frames_out is None else num_frames_out
    y = _to_mono16k(w, sr)
    if y.size == 0 or T == 0:
        return np.zeros(T, np.float32)
    rms = _chunked_rms(y, 400, HOP)
    e = np.log(rms.astype(np.float64) ** 2 + 1e-8)
    e = np.interp(np.arange(T) / FPS, np.arange(e.size) * HOP / SAMPLE_RATE, e)
    local = uniform_filter1d(e, CLOSURE_WINDOW, mode="nearest")
    speech = uniform_filter1d((e > np.percentile(e, 30)).astype(np.float64), 15, mode="nearest") > 0.5
    dip = np.clip((local - e) / CLOSURE_DIP_FULL, 0.0, 1.0) * speech
    return np.clip(gaussian_filter1d(dip, 1.0, mode="nearest"), 0.0, 1.0).astype(np.float32)
