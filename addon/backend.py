"""Where generation runs: the model's API module, the backend (ONNX Runtime
or PyTorch, CPU or CUDA), the cached generators, and the warm-up that pays
the first Generate's one-off costs ahead of time.  No scene access except
:func:`start_warm_up` reading the add-on preferences on the main thread."""
from __future__ import annotations

import os
import threading

import bpy
import numpy as np

from .errors import GenerationError

SAMPLE_RATE = 16000
_GENERATORS: dict = {}
_GENERATORS_LOCK = threading.Lock()


def is_cuda_error(exc: BaseException) -> bool:
    """True for errors raised by CUDA / cuDNN / the ONNX Runtime CUDA provider."""
    text = f"{type(exc).__name__}: {exc}"
    return any(k in text for k in ("CUDA", "cuda", "cuDNN", "CUBLAS", "OutOfMemoryError"))


def model_api():
    """The model's public API module (imports torch on first use).

    Raises:
        GenerationError: the model package or its dependencies are missing.
    """
    try:
        from ..model import generate
    except ImportError as exc:
        raise GenerationError(
            f"CoSpeech's model cannot load: {exc}. Install the extension package for your "
            "platform (it bundles PyTorch), or run tools/setup.sh in a source checkout.") from exc
    return generate


def cuda_driver_present() -> bool:
    """True if an NVIDIA CUDA driver library can be loaded (``libcuda.so.1`` /
    ``nvcuda.dll``): without it neither PyTorch nor ONNX Runtime can use a GPU,
    so the ~1.2 s ``import torch`` for ``torch.cuda.is_available()`` is skipped."""
    import ctypes
    import sys
    if sys.platform == "darwin":
        return False
    for name in (("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def choose_backend(device: str) -> str:
    """Backend for a device setting: ONNX Runtime (the packaged runtime, and
    ~1.8x faster than PyTorch on CPU here, see model/MODEL_CARD.md) unless
    a CUDA GPU is wanted and only PyTorch can use it."""
    import importlib.util
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    has_torch = importlib.util.find_spec("torch") is not None
    if not has_ort:
        return "torch" if has_torch else "onnx"     # "onnx" then reports what is missing
    if device in ("auto", "cuda") and has_torch and cuda_driver_present():
        try:
            import onnxruntime
            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                return "onnx"
            import torch
            if torch.cuda.is_available():
                return "torch"
        except Exception:
            pass
    return "onnx"


def get_generator(device: str, weights_dir: str | None = None):
    """Cached :class:`model.generate.Generator` for ``device`` ("auto"/"cpu"/"cuda")
    and ``weights_dir`` (None: the bundled weights).

    Raises:
        model.generate.WeightsError: missing or corrupt weights.
    """
    gen_mod = model_api()
    backend = choose_backend(device)
    # COSPEECH_THREADS: CPU threads of one generation (batch workers set 1; default: all cores)
    threads = int(os.environ["COSPEECH_THREADS"]) if os.environ.get("COSPEECH_THREADS", "").isdigit() else None
    key = (device, backend, weights_dir or "", _weights_signature(weights_dir or gen_mod.DEFAULT_WEIGHTS_DIR),
           threads)
    with _GENERATORS_LOCK:
        if key not in _GENERATORS:
            _GENERATORS[key] = gen_mod.Generator.load(weights_dir or None, device=device, backend=backend,
                                                      threads=threads)
        return _GENERATORS[key]


def _weights_signature(weights_dir) -> tuple:
    """(name, size, mtime) of every file in the weights folder: weights
    replaced on disk are reloaded instead of served from the cache."""
    try:
        entries = sorted(os.scandir(weights_dir), key=lambda e: e.name)
    except OSError:
        return ()
    return tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file())


def warm_up(device: str = "auto", weights_dir: str | None = None) -> bool:
    """Pay the first Generate's one-off costs ahead of time (no bpy: safe in a thread).

    Imports the audio stack (``librosa.load`` pulls in scipy.signal and
    numba, ~2 s here), decodes and analyses 0.5 s of generated audio through
    the same functions a Generate uses, loads the model into the shared
    generator cache (:func:`get_generator`) and starts a PocketSphinx phone
    worker process (kept while Blender runs, ~100 MB; ~0.2 s saved on the first
    Generate).  Errors are swallowed: a real
    Generate reports them.

    Returns:
        True if everything loaded.
    """
    try:
        import io

        import soundfile as sf
        features = features_module()
        buf = io.BytesIO()
        tone = 0.1 * np.sin(np.linspace(0.0, 2 * np.pi * 220, SAMPLE_RATE // 2)).astype(np.float32)
        sf.write(buf, tone, SAMPLE_RATE, format="WAV")
        wave = features.load_audio_bytes(buf.getvalue(), ".wav", "warm-up audio")
        features.raw_audio_features(wave, SAMPLE_RATE)
        get_generator(device, weights_dir)
        phones_module().allphone_chunked(wave, SAMPLE_RATE, in_child=True)   # starts a kept phone worker
        return True
    except Exception:   # noqa: BLE001 - best effort; Generate reports the real error
        return False


def start_warm_up() -> None:
    """Start :func:`warm_up` in a daemon thread with the add-on preferences'
    weights folder (read here, on the main thread).  Used as a one-shot
    ``bpy.app.timers`` callback after the add-on registers; returns None."""
    from .prefs import preferences
    prefs = preferences()
    wdir = bpy.path.abspath(prefs.weights_dir) if prefs is not None and prefs.weights_dir else None
    thread = threading.Thread(target=warm_up, args=("auto", wdir), name="cospeech-warm-up", daemon=True)
    thread.start()
    import atexit   # never quit with the thread inside ONNX Runtime / numba (hangs native exit handlers)
    atexit.register(thread.join, 30.0)
    return None


def features_module():
    try:
        from ..model import features
    except ImportError as exc:
        raise GenerationError(f"CoSpeech's audio features cannot load: {exc}") from exc
    return features


def phones_module():
    try:
        from ..model import phones
    except ImportError as exc:
        raise GenerationError(f"CoSpeech's phone decoding cannot load: {exc}") from exc
    return phones
