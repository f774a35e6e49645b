"""Torch vs ONNX Runtime backends of the numpy sampler (no bpy).

Measured on the bundled weights (CPU, 1 thread): denoiser outputs agree to
~3e-6 (normalised units) and whole takes to ~2e-6 rad in the SMPL-X poses;
the tests use 1e-4 / 1e-3 rad as tolerances.
"""
import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import hashlib
import subprocess
import textwrap

import numpy as np
import pytest

from model import backends as BK
from model import flow
from model import generate as G
from model.generate import Generator, WeightsError, select_device
from model.representation import FRAME_DIM, Normaliser

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
torch.set_num_threads(1)

REPO = pathlib.Path(__file__).resolve().parents[1]
BUNDLED = pathlib.Path(G.DEFAULT_WEIGHTS_DIR)
HAVE_BUNDLED = (BUNDLED / G.WEIGHTS_FILE).is_file() and (BUNDLED / G.ONNX_FILE).is_file()
POSE_TOL = 1e-3   # rad, whole take torch vs onnx (measured ~2e-6)
NET_TOL = 1e-4    # normalised units, one network call (measured ~3e-6)


def _speechlike(seconds, seed=0, sr=16000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = (np.sin(2 * np.pi * 2.3 * t) > 0.2).astype(np.float32)
    return (env * (0.2 * np.sin(2 * np.pi * 140 * t) + 0.05 * rng.standard_normal(t.size))).astype(np.float32)


def _random_inputs(rng, B, T, A=48, n_styles=4):
    return (rng.standard_normal((B, T, FRAME_DIM), dtype=np.float32), rng.random(B, dtype=np.float32),
            rng.standard_normal((B, T, A), dtype=np.float32), rng.integers(0, n_styles, B),
            rng.standard_normal((B, T, FRAME_DIM), dtype=np.float32), (rng.random((B, T)) < 0.3).astype(np.float32),
            rng.random(B) < 0.5, rng.random(B) < 0.5)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A small random network saved in the shipped format (safetensors + json + onnx)."""
    from model.network import CoSpeechNet, NetConfig
    d = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    net = CoSpeechNet(NetConfig(d_model=32, n_layers=1, n_heads=2))
    with torch.no_grad():  # non-trivial modulation weights (they are zero-initialised)
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rng = np.random.default_rng(0)
    norm = Normaliser(rng.standard_normal(FRAME_DIM).astype(np.float32) * 0.1, np.full(FRAME_DIM, 0.1, np.float32))
    G.save_weights(d, net, norm, {"window": 60, "overlap": 12, "training": {}})
    return d


# ------------------------------------------------------------------ network level
@pytest.mark.parametrize("B,T", [(1, 120), (2, 120), (2, 37), (4, 7)])
def test_exported_onnx_matches_torch(tiny_weights, B, T):
    net, _, _ = G.load_torch_net(tiny_weights)
    tdn = BK.TorchDenoiser(net, "cpu")
    odn = BK.OnnxDenoiser(tiny_weights / G.ONNX_FILE, device="cpu", threads=1)
    args = _random_inputs(np.random.default_rng(B * 1000 + T), B, T)
    a, b = tdn(*args), odn(*args)
    assert a.shape == b.shape == (B, T, FRAME_DIM) and b.dtype == np.float32
    assert np.abs(a - b).max() < NET_TOL


@pytest.mark.skipif(not HAVE_BUNDLED, reason="bundled weights / cospeech.onnx absent")
def test_bundled_onnx_matches_bundled_safetensors():
    from model.training.export_onnx import compare
    m = BK.OnnxDenoiser(BUNDLED / G.ONNX_FILE, device="cpu").metadata
    sha = hashlib.sha256((BUNDLED / G.WEIGHTS_FILE).read_bytes()).hexdigest()
    assert m.get("safetensors_sha256") == sha, "cospeech.onnx is stale: run `python -m model.training.export_onnx`"
    assert m.get("format") == G.FORMAT
    assert compare(BUNDLED) < NET_TOL
    assert (BUNDLED / G.ONNX_FILE).stat().st_size < 10 * 2 ** 20


# ------------------------------------------------------------------ sampler level (numpy)
def test_gaussian_smooth_matches_reference_kernel():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 90, 5)).astype(np.float32)
    for sigma in (1.0, 1.1, 1.5, 8.0):
        r = int(np.ceil(3 * sigma))
        k = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma ** 2))
        k /= k.sum()
        xp = np.pad(x, ((0, 0), (r, r), (0, 0)), mode="edge")
        ref = np.stack([np.convolve(xp[0, :, f], k, mode="valid") for f in range(5)], -1)[None]
        assert np.abs(flow.gaussian_smooth(x, sigma) - ref).max() < 1e-5
    assert flow.gaussian_smooth(x, 0) is x


def test_sample_with_numpy_denoiser_batches_cfg_and_keeps_known():
    calls = []

    def den(x, t, audio, style, known, mask_f, da, ds):  # toy denoiser: pulls to the known frames / audio mean
        calls.append((x.shape, da.copy(), ds.copy()))
        return np.where(da[:, None, None], 0.0, audio.mean(-1, keepdims=True)).astype(np.float32) + 0 * x

    rng = np.random.default_rng(1)
    audio = rng.standard_normal((1, 40, 48)).astype(np.float32)
    known = rng.standard_normal((1, 40, FRAME_DIM)).astype(np.float32)
    mask = np.zeros((1, 40), bool)
    mask[0, :10] = True
    a = flow.sample(den, audio, np.array([1]), known=known, mask=mask, steps=3, guidance=2.0, rng=5)
    b = flow.sample(den, audio, np.array([1]), known=known, mask=mask, steps=3, guidance=2.0, rng=5)
    assert len(calls) == 6 and calls[0][0] == (2, 40, FRAME_DIM)
    assert list(calls[0][1]) == [False, True] and list(calls[0][2]) == [False, True]
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert np.array_equal(a[0, :10], known[0, :10])
    calls.clear()
    flow.sample(den, audio, np.array([1]), steps=2, guidance=1.0, rng=np.random.default_rng(0))
    assert len(calls) == 2 and calls[0][0] == (1, 40, FRAME_DIM)
    with pytest.raises(ValueError, match="steps"):
        flow.sample(den, audio, np.array([1]), steps=51)


# ------------------------------------------------------------------ generator level
@pytest.mark.parametrize("known_range", [None, (40, 70)])
def test_generate_onnx_equals_torch_tiny(tiny_weights, known_range):
    gt = Generator.load(str(tiny_weights), "cpu", backend="torch")
    go = Generator.load(str(tiny_weights), "cpu", backend="onnx", threads=1)
    assert (gt.backend, go.backend) == ("torch", "onnx") and go.net is None
    w = _speechlike(5.0)  # 150 frames: 3 windows of 60 frames
    kw = {}
    if known_range:
        base = gt.generate(w, seed=1, steps=2)
        mask = np.ones(base.num_frames, bool)
        mask[slice(*known_range)] = False
        kw = {"known": base, "known_mask": mask}
    a = gt.generate(w, seed=4, steps=3, **kw)
    b = go.generate(w, seed=4, steps=3, **kw)
    assert a.num_frames == b.num_frames == 150
    assert np.abs(a.poses - b.poses).max() < POSE_TOL
    assert np.abs(a.trans - b.trans).max() < 1e-3 and np.abs(a.expressions - b.expressions).max() < 1e-2
    if known_range:
        for k in ("poses", "expressions", "trans"):
            assert np.array_equal(getattr(b, k)[mask], getattr(base, k)[mask])
    b2 = go.generate(w, seed=4, steps=3, **kw)
    assert np.array_equal(b.poses, b2.poses)  # same seed, same backend -> bit-identical


@pytest.mark.skipif(not HAVE_BUNDLED, reason="bundled weights / cospeech.onnx absent")
def test_generate_onnx_equals_torch_bundled():
    gt = Generator.load(device="cpu", backend="torch")
    go = Generator.load(device="cpu", backend="onnx", threads=1)
    assert go.smooth_sigma == gt.smooth_sigma > 0 and go.styles == gt.styles
    w = _speechlike(12.0, seed=2)
    a = gt.generate(w, seed=3, steps=8, guidance=2.0, style="energetic")
    b = go.generate(w, seed=3, steps=8, guidance=2.0, style="energetic")
    assert a.num_frames == b.num_frames == 360
    assert np.abs(a.poses - b.poses).max() < POSE_TOL
    assert np.abs(a.trans - b.trans).max() < 1e-3


def test_missing_and_corrupt_onnx(tmp_path, tiny_weights):
    cfg = (tiny_weights / G.CONFIG_FILE).read_text()
    d = tmp_path / "noonnx"
    d.mkdir()
    (d / G.CONFIG_FILE).write_text(cfg)
    (d / G.WEIGHTS_FILE).write_bytes((tiny_weights / G.WEIGHTS_FILE).read_bytes())
    with pytest.raises(WeightsError, match="missing.*cospeech.onnx.*export_onnx"):
        Generator.load(str(d), "cpu", backend="onnx")
    assert Generator.load(str(d), "cpu", backend="torch").backend == "torch"  # torch needs no onnx
    (d / G.ONNX_FILE).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(WeightsError, match="corrupt"):
        Generator.load(str(d), "cpu", backend="onnx")
    data = (tiny_weights / G.ONNX_FILE).read_bytes()
    (d / G.ONNX_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError):
        Generator.load(str(d), "cpu", backend="onnx")
    (d / G.ONNX_FILE).write_bytes(data)
    (d / G.CONFIG_FILE).write_text("{not json")
    with pytest.raises(WeightsError, match="corrupt"):
        Generator.load(str(d), "cpu", backend="onnx")
    with pytest.raises(ValueError, match="backend"):
        Generator.load(str(tiny_weights), "cpu", backend="tflite")


# ------------------------------------------------------------------ device selection
def _fake_cuda(monkeypatch, backend, cuda_ok):
    if backend == "torch":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_ok)
    else:
        eps = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda_ok else ["CPUExecutionProvider"]
        monkeypatch.setattr(ort, "get_available_providers", lambda: eps)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("requested,cuda_ok,expect,warns", [
    ("auto", False, "cpu", False), ("auto", True, "cuda", False), ("cpu", True, "cpu", False),
    ("cuda", False, "cpu", True), ("cuda", True, "cuda", False)])
def test_select_device_both_backends(monkeypatch, backend, requested, cuda_ok, expect, warns):
    _fake_cuda(monkeypatch, backend, cuda_ok)
    dev, msg = select_device(requested, backend)
    assert dev.type == expect and str(dev).startswith(expect)
    assert bool(msg) == warns
    if warns:
        assert "CUDA" in msg and "CPU" in msg
    if backend == "onnx":
        providers, _ = BK.onnx_providers(requested)
        assert providers[0] == ("CUDAExecutionProvider" if expect == "cuda" else "CPUExecutionProvider")


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("requested", ["auto", "cpu", "cuda"])
def test_generator_device_without_cuda(monkeypatch, tiny_weights, backend, requested):
    _fake_cuda(monkeypatch, backend, False)
    g = Generator.load(str(tiny_weights), requested, backend=backend)
    assert g.device.type == "cpu" and g.backend == backend
    assert bool(g.device_warning) == (requested == "cuda")
    if backend == "onnx":
        assert g.denoiser.providers[0] == "CPUExecutionProvider"
    assert g.generate(_speechlike(1.0), steps=1).num_frames == 30


def test_select_device_rejects_unknown():
    for backend in ("torch", "onnx"):
        with pytest.raises(ValueError):
            select_device("tpu", backend)
    with pytest.raises(ValueError):
        select_device("cpu", "jax")


# ------------------------------------------------------------------ without torch
BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("No module named 'torch' (blocked by test)", name=name)
            return None
    sys.meta_path.insert(0, _NoTorch())
    for m in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        del sys.modules[m]
""")


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], cwd=str(REPO),
                          capture_output=True, text=True, timeout=300)


def test_generate_without_torch_uses_onnx(tiny_weights):
    r = _run_without_torch(f"""
        import numpy as np
        from model import generate as G
        from model.backends import resolve_backend
        assert resolve_backend("auto") == "onnx"
        dev, warn = G.select_device("auto")
        assert dev == "cpu" and dev.type == "cpu" and warn == "", (dev, warn)
        dev, warn = G.select_device("cuda")
        assert dev.type == "cpu" and "CUDA" in warn
        g = G.Generator.load({str(tiny_weights)!r}, device="auto")
        assert g.backend == "onnx" and g.net is None
        t = np.arange(48000) / 16000
        clip = g.generate((0.2 * np.sin(2 * np.pi * 140 * t)).astype(np.float32), 16000, seed=0, steps=2)
        assert clip.num_frames == 90 and np.isfinite(clip.poses).all()
        try:
            G.Generator.load({str(tiny_weights)!r}, device="cpu", backend="torch")
        except G.BackendError as exc:
            assert "torch" in str(exc).lower()
        else:
            raise AssertionError("torch backend loaded without torch")
        assert "torch" not in sys.modules, [m for m in sys.modules if m.startswith("torch")]
        print("OK", clip.num_frames)
    """)
    assert r.returncode == 0 and "OK 90" in r.stdout, r.stdout + r.stderr


@pytest.mark.skipif(not HAVE_BUNDLED, reason="bundled weights / cospeech.onnx absent")
def test_cli_without_torch_bundled(tmp_path):
    import soundfile as sf
    wav = tmp_path / "a.wav"
    sf.write(wav, _speechlike(2.0, sr=22050, seed=3), 22050)
    out = tmp_path / "o.npz"
    r = _run_without_torch(f"""
        from model.generate import main
        rc = main([{str(wav)!r}, "-o", {str(out)!r}, "--steps", "2"])
        assert "torch" not in sys.modules
        raise SystemExit(rc)
    """)
    assert r.returncode == 0, r.stdout + r.stderr
    from model.motion import MotionClip
    clip = MotionClip.load(out)
    assert clip.num_frames == 60 and clip.fps == 30.0
