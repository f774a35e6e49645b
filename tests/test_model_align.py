"""Dialogue text → phones (PocketSphinx forced alignment, model/align.py), judged
against the dev clip's TextGrid; text that does not fit falls back to decoding."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ARCTIC_A0009_TEXT as ARCTIC_TEXT, DEV_AUDIO, FRENCH_TEXT, need

pytest.importorskip("pocketsphinx")
from model import phones as ph  # noqa: E402
from model.align import words  # noqa: E402
from model.features import load_audio  # noqa: E402


def _near(cands, ref) -> float:
    c = np.array([p.centre for p in cands])
    return float(np.mean([np.abs(c - r.centre).min() <= 1 / 30 + 1e-9 for r in ref]))


def test_aligned_phones_beat_decoded_ones_on_the_textgrid():
    wav, tg = need(DEV_AUDIO / "beat2_scott_2_2.wav"), need(DEV_AUDIO / "beat2_scott_2_2.TextGrid")
    from praatio import textgrid
    text = " ".join(e.label for e in textgrid.openTextgrid(str(tg), includeEmptyIntervals=False)
                    .getTier("words").entries)
    wave = load_audio(wav)
    T = int(len(wave) / 16000 * 30)
    report = {}
    ph.viseme_features(wave, T, text=text, report=report)
    assert report["phones"].startswith("phones aligned to the text"), report
    aligned, decoded, ref = ph.aligned_phones(wave, text)[0], ph.allphone(wave), ph.textgrid_phones(tg)
    assert _near(aligned, ref) > _near(decoded, ref) + 0.1          # measured 0.95 vs 0.75


@pytest.mark.parametrize("text,why", [(FRENCH_TEXT, "does not match"),
                                      ("... !!", "no English dictionary word"),
                                      ("the paris fashion week and the london fashion week", "not aligned")])
def test_text_that_does_not_fit_falls_back_to_decoding(text, why):
    wave = load_audio(need(DEV_AUDIO / "arctic_a0009.wav"))
    T = int(len(wave) / 16000 * 30)
    report = {}
    with_text = ph.viseme_features(wave, T, text=text, report=report)
    assert why in report["phones"] and "decoded from the audio instead" in report["phones"], report
    np.testing.assert_array_equal(with_text, ph.viseme_features(wave, T))     # exactly the decoded phones
    report = {}
    ph.viseme_features(wave, T, text=ARCTIC_TEXT, report=report)
    assert report["phones"].startswith("phones aligned"), report


def test_words():
    assert words("I'm at 5th Ave., don't—stop!") == ["i'm", "at", "five", "th", "ave", "don't", "stop"]


def test_the_kept_decoder_aligns_a_text_as_a_new_one(monkeypatch):
    """align() keeps its Decoder between calls -- in a kept child process, or in
    this process where none can start; PocketSphinx's front end adapts to the
    previous utterance, so it is reset: the same line gives the same segments
    after another line as with a new Decoder, in the child as in this process."""
    from model import align as al
    from model import sphinx_worker as sw
    wave = load_audio(need(DEV_AUDIO / "arctic_a0009.wav"))
    other = load_audio(need(DEV_AUDIO / "beat2_scott_2_2.wav"))[:16000 * 4]
    monkeypatch.setattr(al, "_DECODER", None)
    first = al.align(wave, ARCTIC_TEXT, in_child=False).segments
    al.align(other, "the paris fashion week", in_child=False)
    assert al.align(wave, ARCTIC_TEXT, in_child=False).segments == first
    sw.close_workers()                                       # a new child
    assert al.align(wave, ARCTIC_TEXT).segments == first
    al.align(other, "the paris fashion week")
    assert al.align(wave, ARCTIC_TEXT).segments == first     # the kept child, after another line
    with pytest.raises(al.AlignError, match="no English dictionary word"):
        al.align(wave, "zzxq qqzz")                           # a failure answered by the child ...
    assert al.align(wave, ARCTIC_TEXT).segments == first     # ... which goes on working
    sw.close_workers()
    monkeypatch.setattr(sw, "_SCRIPT", "/nonexistent/sphinx_worker.py")   # no child can work: aligned here
    assert al.align(wave, ARCTIC_TEXT).segments == first
    assert not sw._IDLE                                      # the dead child was not kept
