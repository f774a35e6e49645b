"""Phone alignments (TextGrid, PocketSphinx allphone) and the phoneme
lip-sync contrast, on real speech and the real capture."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import BEAT2_NPZ, REPO, SHARED_DATA, need
from model.features import load_audio
from model.motion import MotionClip
from model.phones import BILABIALS, OPEN_VOWELS, Phone, allphone, jaw_opening, phoneme_contrast, textgrid_phones

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
    from model.lipsync_eval import format_lipsync, lipsync_report
    rep = lipsync_report(Generator.load(backend="onnx"), [0], 2, 2.0, "moderate", out=tmp_path)
    h = rep["heldout"]
    assert h["capture"]["contrast"] > 1.2
    assert h["ridge"]["r"] > 0.3 and h["ridge"]["contrast"] > 0.5
    assert np.isfinite(h["model"]["r"]) and np.isfinite(h["model"]["contrast"])
    assert len(rep["dev_audio"]) >= 4 and all(v["phones"] > 10 for v in rep["dev_audio"].values())
    table = format_lipsync(rep)
    assert "ridge baseline" in table and "capture" in table and "model" in table
    assert (tmp_path / "lipsync_heldout.png").stat().st_size > 10_000
    assert len(list(tmp_path.glob("lipsync_dev_*.png"))) == len(rep["dev_audio"])
