import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import json

import numpy as np
import pytest
import torch

from model import generate as G
from model.generate import Cancelled, Generator, WeightsError, select_device, save_weights
from model.motion import MotionClip
from model.network import CoSpeechNet, NetConfig, parameter_comparison
from model.representation import FRAME_DIM, Normaliser

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
BUNDLED = pathlib.Path(G.DEFAULT_WEIGHTS_DIR)
HAVE_BUNDLED = (BUNDLED / G.WEIGHTS_FILE).is_file()
torch.set_num_threads(1)


def _speechlike(seconds, seed=0, sr=16000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = (np.sin(2 * np.pi * 2.3 * t) > 0.2).astype(np.float32)
    return (env * (0.2 * np.sin(2 * np.pi * 140 * t) + 0.05 * rng.standard_normal(t.size))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A randomly initialised small network saved in the shipped format."""
    d = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    net = CoSpeechNet(NetConfig(d_model=32, n_layers=1, n_heads=2))
    rng = np.random.default_rng(0)
    norm = Normaliser(rng.standard_normal(FRAME_DIM).astype(np.float32) * 0.1,
                      np.full(FRAME_DIM, 0.1, np.float32))
    save_weights(d, net, norm, {"window": 60, "overlap": 12, "training": {}})
    return d


def test_styles_and_defaults():
    ids = [s[0] for s in G.STYLES]
    assert G.DEFAULT_STYLE in ids and "left_mirror" in ids and "calm" in ids and "energetic" in ids
    assert all(len(s) == 3 and all(isinstance(x, str) and x for x in s) for s in G.STYLES)


def test_parameter_comparison():
    c = parameter_comparison()
    assert c["shared"] < c["separate_total"] and 0.4 < c["ratio"] < 0.7


def test_determinism_same_seed(tiny_weights):
    g = Generator.load(str(tiny_weights), "cpu")
    w = _speechlike(3.0)
    a = g.generate(w, seed=7, steps=3)
    b = g.generate(w, seed=7, steps=3)
    c = g.generate(w, seed=8, steps=3)
    assert a.num_frames == 90 and a.fps == 30.0
    assert np.array_equal(a.poses, b.poses) and np.array_equal(a.expressions, b.expressions)
    assert not np.array_equal(a.poses, c.poses)


def test_inpainting_outside_frames_identical(tiny_weights):
    g = Generator.load(str(tiny_weights), "cpu")
    w = _speechlike(4.0)
    take = g.generate(w, seed=1, steps=2)
    mask = np.ones(take.num_frames, bool)
    mask[40:70] = False
    new = g.generate(w, seed=2, steps=2, known=take, known_mask=mask)
    for k in ("poses", "expressions", "trans"):
        assert np.array_equal(getattr(new, k)[mask], getattr(take, k)[mask])
    assert not np.array_equal(new.poses[40:70], take.poses[40:70])


def test_long_audio_windows_and_progress(tiny_weights):
    g = Generator.load(str(tiny_weights), "cpu")
    w = _speechlike(125.0)
    fr = []
    clip = g.generate(w, seed=0, steps=1, guidance=1.0, progress=lambda f: fr.append(f) or True)
    assert clip.num_frames == 3750 and np.isfinite(clip.poses).all()
    assert fr[0] == 0.0 and abs(fr[-1] - 1.0) < 1e-9 and all(b >= a for a, b in zip(fr, fr[1:]))


def test_cancel(tiny_weights):
    g = Generator.load(str(tiny_weights), "cpu")
    with pytest.raises(Cancelled):
        g.generate(_speechlike(10.0), steps=2, progress=lambda f: f < 0.3)


def test_bad_arguments(tiny_weights):
    g = Generator.load(str(tiny_weights), "cpu")
    w = _speechlike(1.0)
    with pytest.raises(ValueError, match="style"):
        g.generate(w, style="nope")
    with pytest.raises(ValueError, match="steps"):
        g.generate(w, steps=0)
    with pytest.raises(ValueError, match="known_mask"):
        g.generate(w, known=MotionClip.zeros(30), known_mask=np.ones(10, bool))


def test_missing_and_corrupt_weights(tmp_path, tiny_weights):
    with pytest.raises(WeightsError, match="missing"):
        Generator.load(str(tmp_path), "cpu")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / G.CONFIG_FILE).write_text((tiny_weights / G.CONFIG_FILE).read_text())
    (bad / G.WEIGHTS_FILE).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(WeightsError, match="corrupt"):
        Generator.load(str(bad), "cpu")
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    (trunc / G.CONFIG_FILE).write_text((tiny_weights / G.CONFIG_FILE).read_text())
    data = (tiny_weights / G.WEIGHTS_FILE).read_bytes()
    (trunc / G.WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError):
        Generator.load(str(trunc), "cpu")
    badjson = tmp_path / "badjson"
    badjson.mkdir()
    (badjson / G.WEIGHTS_FILE).write_bytes(data)
    (badjson / G.CONFIG_FILE).write_text("{not json")
    with pytest.raises(WeightsError, match="corrupt"):
        Generator.load(str(badjson), "cpu")
    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    (mismatch / G.WEIGHTS_FILE).write_bytes(data)
    cfg = json.loads((tiny_weights / G.CONFIG_FILE).read_text())
    cfg["net"]["d_model"] = 64
    (mismatch / G.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="match"):
        Generator.load(str(mismatch), "cpu")


@pytest.mark.parametrize("requested,cuda_ok,expect,warns", [
    ("auto", False, "cpu", False), ("auto", True, "cuda", False), ("cpu", True, "cpu", False),
    ("cuda", False, "cpu", True), ("cuda", True, "cuda", False)])
def test_select_device(monkeypatch, requested, cuda_ok, expect, warns):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_ok)
    dev, msg = select_device(requested)
    assert dev.type == expect
    assert bool(msg) == warns
    if warns:
        assert "CUDA" in msg and "CPU" in msg


def test_select_device_rejects_unknown():
    with pytest.raises(ValueError):
        select_device("tpu")


@pytest.mark.skipif(not HAVE_BUNDLED, reason="bundled weights model/weights/cospeech.safetensors not trained yet")
def test_bundled_weights_load_and_cli(tmp_path):
    from model.generate import main
    import soundfile as sf
    g = Generator.load(device="cpu")
    assert g.styles == [s[0] for s in G.STYLES]
    wav = tmp_path / "a.wav"
    sf.write(wav, _speechlike(2.0, sr=44100, seed=3), 44100)
    out = tmp_path / "o.npz"
    assert main([str(wav), "-o", str(out), "--steps", "2", "--device", "cpu"]) == 0
    clip = MotionClip.load(out)
    assert clip.num_frames == 60 and clip.fps == 30.0


@pytest.mark.skipif(not (HAVE_BUNDLED and (SHARED / "beat2").is_dir()),
                    reason="needs the bundled weights and the BEAT2 capture in ../shared/data")
def test_inpainting_border_velocity_within_capture_range():
    from model.features import load_audio
    from model.skeleton import UPPER_BODY, forward_kinematics
    cap = MotionClip.load(SHARED / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz")
    pos = forward_kinematics(cap.poses, cap.trans)[:, list(UPPER_BODY)]
    acc_cap = np.linalg.norm(np.diff(pos, n=2, axis=0), axis=-1).mean(1) * 900
    g = Generator.load(device="cpu")
    w = load_audio(SHARED / "dev_audio" / "faceformer_test.wav")
    take = g.generate(w, seed=0, steps=8)
    mask = np.ones(take.num_frames, bool)
    a, b = 120, 200
    mask[a:b] = False
    new = g.generate(w, seed=5, steps=8, known=take, known_mask=mask)
    assert np.array_equal(new.poses[mask], take.poses[mask])
    p = forward_kinematics(new.poses, new.trans)[:, list(UPPER_BODY)]
    acc = np.linalg.norm(np.diff(p, n=2, axis=0), axis=-1).mean(1) * 900
    border = max(acc[a - 2:a + 1].max(), acc[b - 2:b + 1].max())
    assert border <= np.percentile(acc_cap, 99.5), (border, np.percentile(acc_cap, 99.5))


@pytest.mark.skipif(not HAVE_BUNDLED, reason="bundled weights not trained yet")
def test_window_seams_are_not_jumps():
    """60 s of audio spans many windows; velocity at window starts is not an outlier."""
    g = Generator.load(device="cpu")
    w = _speechlike(20.0, seed=5)
    clip = g.generate(w, seed=0, steps=4)
    x = g.normaliser.encode(clip)
    v = np.linalg.norm(np.diff(x, axis=0), axis=1)
    W, O = g.window, g.overlap
    T = clip.num_frames
    starts = list(range(0, T - W, W - O))[1:] + [T - W]
    seam = np.array([v[s + O - 2:s + O + 1].max() for s in starts])  # where new frames begin
    assert seam.max() <= np.percentile(v, 99.5) * 1.5


@pytest.mark.skipif(not HAVE_BUNDLED, reason="bundled weights missing")
def test_bundled_network_reads_phones_and_survives_undecodable_audio(monkeypatch):
    """The shipped network takes PocketSphinx viseme input; audio the decoder
    cannot read (noise, a tone, digital silence) or a missing decoder still
    gives a finite take whose mouth follows the sound -- never an error."""
    from model import phones
    from model.phones import PhoneError
    g = Generator.load(backend="onnx")
    assert g.visemes and g.meta["net"]["audio_dim"] == 63
    rng = np.random.default_rng(0)
    t = np.arange(48000) / 16000
    for wave in (rng.standard_normal(48000).astype(np.float32) * 0.2, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
                 np.zeros(48000, np.float32)):
        c = g.generate(wave, seed=0, steps=4)
        assert c.num_frames == 90 and np.isfinite(c.poses).all()
    speech = _speechlike(6.0)
    with_phones = g.generate(speech, seed=0, steps=4)

    def broken(*a, **k):
        raise PhoneError("pocketsphinx is not installed (simulated)")
    monkeypatch.setattr(phones, "allphone_chunked", broken)
    without = g.generate(speech, seed=0, steps=4)
    jaw = np.linalg.norm(without.poses[:, 66:69], axis=1)
    assert np.isfinite(without.poses).all() and jaw.std() > 1e-3          # acoustic fallback still articulates
    assert not np.allclose(with_phones.poses[:, 66:69], without.poses[:, 66:69])   # the phones were used
