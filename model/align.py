"""Phones from the dialogue's text: PocketSphinx forced alignment.

Game and film dialogue comes with its script.  Given the line's text, the
phones are where PocketSphinx's aligner puts the words' dictionary
pronunciations in the audio, instead of what its phone recogniser
(:func:`model.phones.allphone`) hears — the phone *labels* are then the
right ones and their timing follows the speech.

Decoder: the en-us acoustic model and ``cmudict-en-us.dict`` shipped in the
PocketSphinx wheel (``pocketsphinx.get_model_path()``), two passes as the
PocketSphinx 5 documentation gives them (word alignment with
``set_align_text``, then ``set_alignment`` for phone-level times).

Text normalisation (:func:`words`): lower case, punctuation dropped
(apostrophes kept: ``i'm``, ``don't``), digits spelt out one by one.  Words
the dictionary lacks are left out of the alignment (listed in the result);
the phones of that stretch then come from the neighbouring words.  When the
alignment fails (no dictionary word, audio longer than :data:`MAX_SECONDS`,
no alignment found) or does not fit the speech (its visemes agree with the
decoded phones' on under :data:`model.phones.TEXT_AGREEMENT` of the speech
frames: another line, another language), :func:`model.phones.viseme_features`
uses the decoded phones and says so.

Measured on ``beat2_scott_2_2`` (62 s, its TextGrid as the truth, the
TextGrid's words as the text; ``tools/bench_align.py``): 95.3 % of the
TextGrid's phone centres have an aligned phone centre within ±1 frame at
30 fps (91.4 % with the same label), allphone 74.5 % (32.6 %); 2.7–2.9 s
for the 62 s on the first call, 2.5 s once the Decoder is kept (2026-12-03:
model and dictionary load ~0.5 s, word pass ~1.0 s, phone pass ~1.9 s;
allphone 2.3 s; with a text both run, so the phones of a line cost their
sum: the ≤ 1 s target for 60 s is not met).  The phone pass grows faster
than the audio (10 s: 0.18 s, 62 s: 1.97 s), but cutting it at pauses needs
a word pass per piece, which costs what it saves; PocketSphinx holds the GIL,
so threads do not run two pieces at once.  Tried (2026-12-03, same bench): PocketSphinx ``ds`` 2 / 3
(score every 2nd / 3rd frame) align the 62 s in 2.1 / 2.0 s at 95.6 / 95.7 %,
but the right text of the short ``arctic_a0009`` then agrees with the
decoded phones on only 20 / 19 % of its frames (25 % now), at or below
:data:`model.phones.TEXT_AGREEMENT`: a correct line would fall back to
decoding, so ``ds`` stays 1.  Beams narrower than the defaults (1e-13 …
1e-20) fail the sub-word alignment.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field

import numpy as np

#: Longer audio is not aligned (one utterance: PocketSphinx's alignment
#: search grows with its length); such takes use allphone decoding.
MAX_SECONDS = 180.0
_DECODER = None            # (Decoder, its initial cepstral mean), made on first use and kept (one at a time: _LOCK)
_LOCK = threading.Lock()
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class AlignError(RuntimeError):
    """The text could not be aligned with the audio; the message says why."""


@dataclass
class Alignment:
    """Segments of an aligned text — ``(PocketSphinx phone label, start s, end s)``,
    silences included (:func:`model.phones.aligned_phones` makes phones of them)
    — and the words left out."""

    segments: list
    unknown: list = field(default_factory=list)


def words(text: str) -> list[str]:
    """The text as dictionary words (see module doc)."""
    out = []
    for w in re.split(r"[\s\-\u2013\u2014/]+", (text or "").lower()):
        w = re.sub(r"[^a-z0-9']", "", w).strip("'")
        for part in re.findall(r"[a-z']+|[0-9]", w):
            out.append(_DIGITS[int(part)] if part.isdigit() else part)
    return out


def align(wave: np.ndarray, text: str, sr: int = 16000) -> Alignment:
    """Forced alignment of ``text`` with mono 16 kHz speech ``wave`` (float in [-1, 1]).

    Returns:
        :class:`Alignment`, times in seconds from the start of ``wave``.
    Raises:
        AlignError: no dictionary word in the text, audio not 16 kHz or longer
            than :data:`MAX_SECONDS`, pocketsphinx missing, or no alignment found.
    """
    if sr != 16000:
        raise AlignError(f"alignment needs 16 kHz audio, got {sr} Hz")
    if len(wave) > MAX_SECONDS * sr:
        raise AlignError(f"{len(wave) / sr:.0f} s of audio is longer than the {MAX_SECONDS:.0f} s aligned at once")
    try:
        from pocketsphinx import Decoder, get_model_path
    except ImportError as exc:
        raise AlignError(f"pocketsphinx is not installed ({exc})") from exc
    with _LOCK:
        global _DECODER
        if _DECODER is None:     # loading the model and the 135 000-word dictionary takes ~0.5 s: once
            mp = get_model_path()
            _DECODER = Decoder(hmm=os.path.join(mp, "en-us", "en-us"),
                               dict=os.path.join(mp, "en-us", "cmudict-en-us.dict"),
                               samprate=16000, bestpath=False, loglevel="FATAL")
            _DECODER = (_DECODER, _DECODER.get_cmn())
        dec, cmn = _DECODER
        dec.reinit_feat()    # the front end's noise estimate and cepstral mean carry over utterances:
        dec.set_cmn(cmn)     # reset both, so a text aligns as with a new Decoder (test_model_align)
        try:
            return _align(dec, wave, text)
        except AlignError:
            _DECODER = None      # a failed search may leave an utterance open: start clean next time
            raise


def _align(dec, wave: np.ndarray, text: str) -> Alignment:
    ws = words(text)
    known = [w for w in ws if dec.lookup_word(w) is not None]
    unknown = [w for w in ws if dec.lookup_word(w) is None]
    if not known:
        raise AlignError("the text has no English dictionary word")
    pcm = (np.clip(np.asarray(wave, np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    try:
        dec.set_align_text(" ".join(known))
        for second in (False, True):
            if second:
                dec.set_alignment()
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
        result = dec.get_alignment()
    except RuntimeError as exc:
        raise AlignError(f"PocketSphinx could not align the text: {str(exc)[:80]}") from exc
    if result is None:
        raise AlignError("PocketSphinx found no alignment of the text with this audio")
    segments = [(p.name, p.start / 100.0, (p.start + p.duration) / 100.0) for word in result for p in word]
    if not any(name not in ("SIL", "+NSN+", "+SPN+") for name, _a, _b in segments):
        raise AlignError("the alignment holds no phones")
    return Alignment(segments, unknown)
