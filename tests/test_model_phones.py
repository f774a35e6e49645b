"""Phone alignments (TextGrid, PocketSphinx allphone) and the phoneme
lip-sync contrast, on real speech and the real capture."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import BEAT2_NPZ, REPO, SHARED_DATA, need
from model.features import load_audio
from model.motion import MotionClip
from model.phones import (ARPABET, BILABIALS, OPEN_VOWELS, VISEMES, Phone, allphone, allphone_chunked, jaw_opening,
                          phone_track, phoneme_contrast, textgrid_phones, viseme_features, viseme_track)

pytest.importorskip("pocketsphinx")
pytest.importorskip("praatio")
TEXTGRID = SHARED_DATA / "beat2" / "textgrid" / "2_scott_0_1_1.TextGrid"


def test_capture_contrast_with_its_phones_and_with_wrong_phones():
    clip = MotionClip.load(need(BEAT2_NPZ))
    jaw = jaw_opening(clip.poses)
    phones = textgrid_phones(need(TEXTGRID))
    assert len(phones) > 500 and all(p.label == p.label.upper() and not p.label[-1].isdigit() for p in phones)
    assert 1.5 < phoneme_contrast(jaw, phones) < 1.9           # the 1.66
    wrong = [Phone(p.label, p.start + 7.3, p.end + 7.3) for p in phones]   # phones of other words
    assert abs(phoneme_contrast(jaw, wrong)) < 0.5


def test_allphone_on_real_speech_and_on_silence():
    wave = load_audio(REPO / "tools" / "demo_audio" / "arctic_a0007.wav")
    phones = allphone(wave)
    labels = {p.label for p in phones}
    assert len(phones) > 20 and labels & OPEN_VOWELS and labels & BILABIALS
    assert all(0 <= p.start < p.end <= 4.1 for p in phones)
    assert len(allphone(np.zeros(32000, np.float32))) <= 2           # silence: no error, ~no phones
    jaw = np.zeros(200)
    assert np.isnan(phoneme_contrast(jaw, phones))                   # a jaw that never moves


def test_lipsync_report_has_the_baseline_row(tmp_path):
    """The evaluator's lip-sync part on the real capture and dev clips: the
    ridge baseline (fitted on the training 80 % only) articulates, and the
    report, table and plots carry model, baseline and capture rows."""
    need(BEAT2_NPZ)
    need(SHARED_DATA / "dev_audio")
    from model.generate import Generator
    from model.training.lipsync_eval import format_lipsync, lipsync_report
    rep = lipsync_report(Generator.load(backend="onnx"), [0], 2, 2.0, "moderate", out=tmp_path)
    h = rep["heldout"]
    assert h["capture"]["contrast"] > 1.2 and h["capture"]["contrast_allphone"] > 1.5   # 1.49 / 1.86
    assert all(np.isfinite(h[k]["contrast_allphone"]) for k in ("model", "ridge_mel", "ridge_input"))
    assert h["ridge_mel"]["r"] > 0.3 and h["ridge_mel"]["contrast"] > 0.5
    assert h["ridge_input"]["r"] > 0.4 and h["ridge_input"]["contrast"] > 0.8     # visemes help a linear map too
    assert np.isfinite(h["model"]["r"]) and np.isfinite(h["model"]["contrast"])
    assert len(rep["dev_audio"]) >= 4 and all(v["phones"] > 10 for v in rep["dev_audio"].values())
    table = format_lipsync(rep)
    assert "ridge baseline (40 log-mel" in table and "ridge baseline (network input" in table
    assert "capture" in table and "model" in table
    assert (tmp_path / "lipsync_heldout.png").stat().st_size > 10_000
    assert len(list(tmp_path.glob("lipsync_dev_*.png"))) == len(rep["dev_audio"])


def test_ridge_cross_validation_inside_the_training_part():
    """``--ridge-cv``: blocked cross-validation of linear maps inside the
    capture's first 80 %; every input carries some of the jaw, none reaches
    the capture's own contrast."""
    need(BEAT2_NPZ)
    from model.training.lipsync_eval import CV_INPUTS, ridge_cv
    cv = ridge_cv(contexts=(2,))
    assert len(cv["capture"]) == 4 and min(cv["capture"]) > 1.2
    assert set(cv[2]) == set(CV_INPUTS)
    for v in cv[2].values():
        assert 0.3 < v["r"] < 0.8 and v["contrast"] < min(cv["capture"]) + 0.3


def test_viseme_track_frames_and_classes():
    phones = [Phone("P", 0.10, 0.20), Phone("AA", 0.20, 0.50), Phone("T", 0.51, 0.52), Phone("XX", 0.6, 0.7)]
    v = viseme_track(phones, 30)
    assert v.shape == (30, 15) and v.dtype == np.float32 and np.all(v.sum(1) == 1)
    lab = [VISEMES[i] for i in v.argmax(1)]
    assert lab[3:6] == ["PP"] * 3 and lab[6:15] == ["aa"] * 9        # frames k with start <= k/30 < end
    assert lab[15] == "DD"                                            # shorter than a frame: its nearest frame
    assert lab[0] == lab[18] == lab[29] == "sil"                      # no phone / unknown label
    p = phone_track(phones, 30)
    assert p.shape == (30, 39) and p.dtype == np.float32 and len(set(ARPABET)) == 39
    assert [ARPABET[i] for i in p[[3, 6, 15]].argmax(1)] == ["P", "AA", "T"]   # same frame rule as the visemes
    assert np.all(p[[3, 6, 15]].sum(1) == 1) and not p[[0, 18, 29]].any()      # silence / unknown: all zero
    assert np.array_equal(p.any(1), v[:, 0] == 0)


def test_chunked_decoding_matches_across_workers_and_reads_long_speech():
    """Long speech is decoded in 30-s chunks (in kept child processes when
    there are several workers); the phones do not depend on the worker count
    or on what the workers decoded before, and
    near the chunk border they agree with one whole-clip decode."""
    w = load_audio(need(SHARED_DATA / "beat2" / "wave16k" / "2_scott_0_1_1.wav"))[:45 * 16000]
    one, two = allphone_chunked(w, workers=1), allphone_chunked(w, workers=2)
    assert one == two and len(one) > 300
    assert allphone_chunked(w[::-1].copy(), workers=2) != two      # the kept workers decode anew ...
    assert allphone_chunked(w, workers=2) == two                   # ... and reset to a new Decoder's state
    short = w[:10 * 16000]
    assert allphone_chunked(short, in_child=True) == allphone_chunked(short, workers=1)   # one chunk in a worker
    assert all(0 <= p.start < p.end <= 45.01 for p in one)
    whole = allphone(w)
    near = lambda ph: sorted(p.label for p in ph if 25 < p.centre < 35)   # noqa: E731
    a, b = near(one), near(whole)
    assert len(set(a) ^ set(b)) <= 3 and abs(len(a) - len(b)) <= 3


def test_viseme_features_of_bad_input_never_raise():
    """Silence, noise and a wrong sample rate give sil / no phones, not an error."""
    from model.features import network_features
    _, f = network_features(np.zeros(16000, np.float32), 16000, visemes=True)
    assert f.shape == (30, 63) and np.all(f[:, 48] == 1)                   # digital silence: sil
    noise = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    assert network_features(noise, 16000, visemes=True)[1].shape == (90, 63)
    assert not viseme_features(noise, 90, sr=22050).any()                  # cannot decode: all zeros
    _, f = network_features(load_audio(REPO / "tools" / "demo_audio" / "arctic_a0007.wav"), 16000, visemes=True)
    used = {VISEMES[i] for i in f[:, 48:].argmax(1)}
    assert {"PP", "aa", "sil"} <= used and len(used) >= 8
    _, fp = network_features(load_audio(REPO / "tools" / "demo_audio" / "arctic_a0007.wav"), 16000, visemes=True,
                             phones=True)
    assert fp.shape == (len(f), 102) and np.array_equal(fp[:, :63], f)   # the 39 phones after the visemes
    assert np.array_equal(fp[:, 63:].any(1), fp[:, 48] == 0)              # a phone wherever the viseme is not sil
    assert viseme_features(noise, 90, sr=22050, with_phones=True).shape == (90, 54)


def test_dev_only_reports_and_face_sigma_choice(tmp_path):
    """The dev-clip commands that chose the shipped network and its face σ:
    per-clip contrast + jaw jerk, the Lip Closure and ARKit reports, and
    ``--tune-face-sigma --write`` on a copy of the bundled weights."""
    import json
    import shutil
    need(SHARED_DATA / "dev_audio")
    from model.generate import DEFAULT_WEIGHTS_DIR, Generator
    from model.training.lipsync_eval import arkit_face_report, closure_effect, dev_contrasts, tune_face_sigma
    g = Generator.load(backend="onnx")
    dev = dev_contrasts(g, [0], 2, 2.0, "moderate")
    assert len(dev) >= 4 and all(np.isfinite(v["contrast"]) and v["jaw_jerk"] > 0 for v in dev.values())
    eff = closure_effect(g, [0, 100], [0], 2, 2.0, "moderate")
    assert set(eff) == set(dev) and all(set(v) == {0, 100} for v in eff.values())
    ark = arkit_face_report(g, [0], 2, 2.0, "moderate")
    assert set(ark) == set(dev) and all(np.isfinite(v["jawOpen_contrast"]) for v in ark.values())
    w = tmp_path / "w"
    shutil.copytree(DEFAULT_WEIGHTS_DIR, w)
    res = tune_face_sigma(str(w), [0.0, 1.5], [0], 2, 2.0, "moderate", write=True)
    jerk = res["dev_mean_jaw_jerk_by_face_sigma"]
    assert jerk["0.0"] > jerk["1.5"] and res["chosen"] in (0.0, 1.5)
    meta = json.loads((w / "cospeech.json").read_text())
    assert meta["face_sigma"] == res["chosen"] and "rule" in meta["face_sigma_selection"]
