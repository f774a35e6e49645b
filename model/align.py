"""Phones from the dialogue's text: PocketSphinx forced alignment.

Game and film dialogue comes with its script.  Given the line's text, the
phones are where PocketSphinx's aligner puts the words' dictionary
pronunciations in the audio, instead of what its phone recogniser
(:func:`model.phones.allphone`) hears — the phone *labels* are then the
right ones and their timing follows the speech.

Decoder: the en-us acoustic model and ``cmudict-en-us.dict`` shipped in the
PocketSphinx wheel (``pocketsphinx.get_model_path()``), two passes as the
PocketSphinx 5 documentation gives them (word alignment with
``set_align_text``, then ``set_alignment`` for phone-level times;
:func:`model.sphinx_worker.align_pcm16`).  It runs in a kept child process
(:func:`model.sphinx_worker.request`), so the phone decoding of the same
audio, which checks that the text fits, runs beside it on the other core
(:func:`model.phones.viseme_features`); where no child process can start,
in this process.

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
allphone 2.3 s; with a text both run: until 2026-12-06 one after the
other, so the phones of a line cost their sum; now side by side in worker
processes: 5.0 s vs 6.2 s for the take's phones of the 62 s, and Blender's UI
thread waits at most 26 ms instead of 2.8 s while the text aligns
(``tools/bench_align.py``, 2026-12-06, on a day this machine ran ~1.4x
slower: alignment alone 3.8–4.2 s).  The ≤ 1 s target for 60 s is not met).  The phone pass grows faster
than the audio (10 s: 0.18 s, 62 s: 1.97 s).  Tried (2026-12-06) and not
kept: a coarse word pass over the whole (``ds`` 3, 0.9–1.2 s in a worker)
to find pauses, then the 6 pieces of ~10 s between them aligned with their
words in two worker processes at once: 95.0 % within ±1 frame (whole: 95.3
%), 2.5–2.7 s instead of 2.7–3.2 s on its own, and no faster beside the
phone decoding (both ways 3.97 s for the take's phones): two PocketSphinx
processes slow each other down here, and the gain did not pay for the code.  Tried (2026-12-03, same bench): PocketSphinx ``ds`` 2 / 3
(score every 2nd / 3rd frame) align the 62 s in 2.1 / 2.0 s at 95.6 / 95.7 %,
but the right text of the short ``arctic_a0009`` then agrees with the
decoded phones on only 20 / 19 % of its frames (25 % now), at or below
:data:`model.phones.TEXT_AGREEMENT`: a correct line would fall back to
decoding, so ``ds`` stays 1.  Beams narrower than the defaults (1e-13 …
1e-20) fail the sub-word alignment.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import numpy as np

from .sphinx_worker import AlignFailure, align_pcm16, aligner, pcm16, request

#: Longer audio is not aligned (one utterance: PocketSphinx's alignment
#: search grows with its length); such takes use allphone decoding.
MAX_SECONDS = 180.0
_DECODER = None            # in-process fallback: (Decoder, its initial cepstral mean), made on first use and kept
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


def align(wave: np.ndarray, text: str, sr: int = 16000, in_child: bool = True) -> Alignment:
    """Forced alignment of ``text`` with mono 16 kHz speech ``wave`` (float in [-1, 1]).

    ``in_child``: in a kept child process (module doc), falling back to this
    process when none can start; False: in this process (a kept Decoder).

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
    ws = words(text)
    if not ws:
        raise AlignError("the text has no English dictionary word")
    pcm = pcm16(wave)
    try:
        if in_child:
            try:
                return _checked(*request(pcm, ws))
            except OSError:
                pass                 # no child process: align here
        return _checked(*_align_here(pcm, ws))
    except AlignFailure as exc:
        raise AlignError(str(exc)) from exc


def _align_here(pcm: bytes, ws: list[str]):
    global _DECODER
    with _LOCK:
        try:
            if _DECODER is None:
                d = aligner()
                _DECODER = (d, d.get_cmn())
            return align_pcm16(pcm, ws, *_DECODER)
        except ImportError as exc:
            raise AlignError(f"pocketsphinx is not installed ({exc})") from exc
        except AlignFailure:
            _DECODER = None      # a failed search may leave an utterance open: start clean next time
            raise


def _checked(segments: list, unknown: list) -> Alignment:
    if not any(name not in ("SIL", "+NSN+", "+SPN+") for name, _a, _b in segments):
        raise AlignError("the alignment holds no phones")
    return Alignment(segments, unknown)
