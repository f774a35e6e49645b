"""Phone alignments of speech and the phoneme lip-sync contrast.

Phones come from a Praat TextGrid ``phones`` tier (the BEAT2 capture ships
one; read with ``praatio``) or, for any other audio, from PocketSphinx
``allphone`` decoding with the en-us acoustic model and phone language
model bundled in the ``pocketsphinx`` wheel (Huggins-Daines et al. 2006;
the approach of Rhubarb Lip Sync).  Phone labels are ARPAbet without stress
digits (CMUdict).

**Phoneme contrast** (the lip-sync issue's measure): with ``jaw`` the jaw
opening per frame (``|poses[:, 66:69]|``, the SMPL-X jaw axis-angle norm in
radians) sampled at phone centres,

    contrast = (mean jaw at open vowels AA AE AH AO AW AY
                - mean jaw at bilabials P B M) / std of jaw at all phone centres

Silence and noise labels (SIL, +NSN+, +SPN+, …, "" / "sil" / "sp") are not
phone centres.  Real capture scores 1.66-1.84; a mouth that ignores the
words scores about 0.

**Viseme features** (:func:`viseme_features`): the decoded phones as
per-frame one-hots of the 15 Oculus viseme classes (``sil PP FF TH DD kk
CH SS nn RR aa E ih oh ou``; phoneme-to-viseme table of the Oculus Lipsync
documentation, "Viseme Reference"), an input of the network beside the
acoustic features.  Chosen over 39 ARPAbet one-hots on the dev clips: a
ridge regression from each (±4 frames) fitted on the capture's first 80 %
reached dev-clip contrasts 1.02 / 2.23 / 2.82 / 1.91 (visemes) vs
0.80 / 1.75 / 2.15 / 1.69 (phones).  ``with_phones`` appends the 39 ARPAbet
one-hots (:data:`ARPABET`, :func:`phone_track`) after the visemes: in a
4-fold cross-validation *within the capture's training part* a ridge map
from visemes + phones + loudness (±2 frames) reached jaw r 0.555 vs 0.487
from visemes + loudness (``python -m model.training.lipsync_eval --ridge-cv``); a
network trained with them (``NetConfig.phones``) did not beat the shipped
one on the dev clips (``model/MODEL_CARD.md``).

Never imports bpy.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .sphinx_worker import decode_pcm16, request
from .sphinx_worker import pcm16 as _pcm16

#: ARPAbet open vowels and bilabial stops / nasal of the measure.
OPEN_VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY"})
BILABIALS = frozenset({"P", "B", "M"})
_NOT_PHONES = frozenset({"", "SIL", "SP", "SPN", "NSN", "NOISE", "<SIL>", "<S>", "</S>"})


class PhoneError(RuntimeError):
    """Phones cannot be read or decoded (missing package or file)."""


@dataclass(frozen=True)
class Phone:
    """One phone: ARPAbet label without stress digit, start and end in seconds."""

    label: str
    start: float
    end: float

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)


def _clean(label: str) -> str:
    return label.strip().upper().strip("+").rstrip("012")


def textgrid_phones(path: str | os.PathLike, tier: str = "phones") -> list[Phone]:
    """Phones of a Praat TextGrid tier (``praatio``), silence labels dropped.

    Raises:
        PhoneError: no such file or tier.
    """
    try:
        from praatio import textgrid
        tg = textgrid.openTextgrid(os.fspath(path), includeEmptyIntervals=False)
        entries = tg.getTier(tier).entries
    except Exception as exc:   # FileNotFoundError, KeyError (tier), praatio parse errors
        raise PhoneError(f"cannot read tier '{tier}' of {path}: {exc}") from exc
    out = [Phone(_clean(e.label), float(e.start), float(e.end)) for e in entries]
    return [p for p in out if p.label not in _NOT_PHONES]


def allphone(wave: np.ndarray, sr: int = 16000) -> list[Phone]:
    """PocketSphinx ``allphone`` decoding of mono speech (16 kHz float in [-1, 1]).

    The decoder and its settings are :func:`model.sphinx_worker.decode_pcm16`
    (the wheel's en-us model, phone bigram, language weight 2, beams 1e-13).
    Frames are 10 ms.  Silence, noise, music or other languages give few or
    no phones, never an error.  Whole clip in this process; for long audio
    see :func:`allphone_chunked`.

    Raises:
        PhoneError: pocketsphinx is not installed, or ``sr`` is not 16 kHz.
    """
    if sr != 16000:
        raise PhoneError(f"allphone needs 16 kHz audio, got {sr} Hz")
    try:
        segs = decode_pcm16(_pcm16(wave))
    except ImportError as exc:
        raise PhoneError(f"pocketsphinx is not installed ({exc})") from exc
    return _phones(segs)


def _phones(segs, offset: float = 0.0) -> list[Phone]:
    out = [Phone(_clean(lab), float(a) + offset, float(b) + offset) for lab, a, b in segs]
    return [p for p in out if p.label not in _NOT_PHONES]


def allphone_chunked(wave: np.ndarray, sr: int = 16000, workers: int | None = None,
                     in_child: bool = False) -> list[Phone]:
    """:func:`allphone` of any length of audio, decoded in parallel chunks.

    The audio is cut into :data:`DECODE_CHUNK_S`-second chunks, each decoded
    with :data:`DECODE_MARGIN_S` s of context either side; a chunk keeps the
    phones whose centre lies in it.  The chunking does not depend on
    ``workers``, so the phones do not either.  With more than one chunk and
    more than one worker (or ``in_child``), chunks are decoded by child
    processes running :mod:`model.sphinx_worker` (PocketSphinx holds the
    GIL), kept for the next call (:func:`model.sphinx_worker.request`); if a
    child cannot run, that chunk is decoded here.

    Args:
        wave: (N,) float32 mono speech at 16 kHz in [-1, 1].
        workers: parallel decoders (default: the CPUs this process may use).
        in_child: decode in a child process even a single chunk (so that this
            process's threads run meanwhile: :func:`viseme_features` aligns a text).
    Returns:
        Phones (seconds from the start of ``wave``), silence/noise dropped.
    Raises:
        PhoneError: pocketsphinx is not installed, or ``sr`` is not 16 kHz.
    """
    if sr != 16000:
        raise PhoneError(f"allphone needs 16 kHz audio, got {sr} Hz")
    wave = np.asarray(wave, np.float32).reshape(-1)
    n, step, margin = len(wave), DECODE_CHUNK_S * sr, DECODE_MARGIN_S * sr
    chunks = [(c0, min(n, c0 + step), max(0, c0 - margin)) for c0 in range(0, max(n, 1), step)]
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    children = (workers > 1 and len(chunks) > 1) or in_child

    def decode(ch):
        c0, c1, a = ch
        pcm = _pcm16(wave[a:min(n, c1 + margin)])
        if children:
            try:
                segs = request(pcm)
            except Exception:   # noqa: BLE001 - no usable child interpreter: decode here
                segs = None
            if segs is not None:
                return segs
        try:
            return decode_pcm16(pcm)
        except ImportError as exc:
            raise PhoneError(f"pocketsphinx is not installed ({exc})") from exc

    if workers > 1 and len(chunks) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(min(workers, len(chunks))) as ex:
            results = list(ex.map(decode, chunks))
    else:
        results = [decode(ch) for ch in chunks]
    phones: list[Phone] = []
    for (c0, c1, a), segs in zip(chunks, results):
        phones += [p for p in _phones(segs, a / sr) if c0 / sr <= p.centre < c1 / sr]
    return phones


#: Oculus viseme classes, in the order of the viseme feature columns.
VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR",
                            "aa", "E", "ih", "oh", "ou")
#: ARPAbet phone -> Oculus viseme (Oculus Lipsync "Viseme Reference" examples:
#: PP put/bat/mat, FF fat/vat, TH think/that, DD tip/doll, kk call/gas, CH chair/join/she,
#: SS sir/zeal, nn lot/not, RR red, aa car, E bed, ih tip, oh toe, ou book).
PHONE_TO_VISEME: dict[str, str] = {
    "P": "PP", "B": "PP", "M": "PP", "F": "FF", "V": "FF", "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD", "K": "kk", "G": "kk", "NG": "kk", "HH": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH", "S": "SS", "Z": "SS", "N": "nn", "L": "nn",
    "R": "RR", "ER": "E", "AA": "aa", "AE": "aa", "AH": "aa", "AY": "aa", "AW": "aa",
    "EH": "E", "EY": "E", "IH": "ih", "IY": "ih", "Y": "ih", "AO": "oh", "OW": "oh", "OY": "oh",
    "UW": "ou", "UH": "ou", "W": "ou"}
VISEME_DIM = len(VISEMES)
#: :func:`allphone_chunked` decodes in chunks of this many seconds (parallel
#: workers, bounded decoder memory), each with this many seconds of context either side.
DECODE_CHUNK_S = 30
DECODE_MARGIN_S = 1


#: The 39 ARPAbet phones of CMUdict (stress digits dropped), the columns of :func:`phone_track`.
ARPABET: tuple[str, ...] = ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
                            "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH",
                            "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH")
PHONE_DIM = len(ARPABET)


def _frame_classes(phones: list[Phone], num_frames: int, fps: float, index: dict[str, int]) -> np.ndarray:
    """(num_frames,) int64 class of each frame, -1 where no phone of ``index`` covers it.

    Frame ``k`` (time ``k / fps`` s) takes the phone whose [start, end)
    interval contains it; a phone shorter than a frame step covers its nearest frame."""
    lab = np.full(int(num_frames), -1, np.int64)
    for p in phones:
        c = index.get(p.label)
        if c is None:
            continue
        a = int(math.ceil(p.start * fps - 1e-9))     # frames k with start <= k/fps < end
        b = int(math.ceil(p.end * fps - 1e-9))
        if b <= a:                                      # shorter than a frame step: its nearest frame
            a = int(round(p.centre * fps))
            b = a + 1
        lab[max(0, a):max(0, min(int(num_frames), b))] = c
    return lab


def viseme_track(phones: list[Phone], num_frames: int, fps: float = 30.0) -> np.ndarray:
    """(num_frames, 15) float32 one-hots of the viseme each frame lies in.

    Frame ``k`` (time ``k / fps`` s) takes the viseme of the phone whose
    [start, end) interval contains it (each phone covers at least its nearest
    frame); frames with no phone get ``sil``.  Unknown labels count as ``sil``.
    """
    lab = np.maximum(_frame_classes(phones, num_frames, fps,
                                    {ph: VISEMES.index(v) for ph, v in PHONE_TO_VISEME.items()}), 0)  # 0 = sil
    out = np.zeros((int(num_frames), VISEME_DIM), np.float32)
    out[np.arange(len(lab)), lab] = 1.0
    return out


def phone_track(phones: list[Phone], num_frames: int, fps: float = 30.0) -> np.ndarray:
    """(num_frames, 39) float32 one-hots of the ARPAbet phone (:data:`ARPABET`)
    each frame lies in (same frame rule as :func:`viseme_track`); frames with
    no phone, silence or an unknown label are all zero."""
    lab = _frame_classes(phones, num_frames, fps, {ph: i for i, ph in enumerate(ARPABET)})
    out = np.zeros((int(num_frames), PHONE_DIM), np.float32)
    k = np.flatnonzero(lab >= 0)
    out[k, lab[k]] = 1.0
    return out


def viseme_features(wave: np.ndarray, num_frames: int, sr: int = 16000, fps: float = 30.0,
                    with_phones: bool = False, text: str | None = None, report: dict | None = None) -> np.ndarray:
    """(num_frames, 15) float32 viseme one-hots of PocketSphinx :func:`allphone` phones
    (``with_phones``: (num_frames, 54), the 39 :func:`phone_track` columns appended).

    With the dialogue's ``text``, the phones come from aligning it
    (:func:`model.align.align`); where that fails, from allphone decoding.
    ``report`` (a dict) gets ``"phones"``: one line saying which it was.

    The network's phonetic input, decoded in kept worker processes
    (:func:`allphone_chunked` ``in_child``) so that this process's threads run
    meanwhile: Blender's UI (PocketSphinx in-process held the GIL, 0.65 s per
    10 s of speech) and the acoustic features.  Speech the decoder cannot read (silence,
    noise, music, other languages) gives ``sil`` or few phones; if decoding
    is impossible (pocketsphinx missing, wrong rate) the result is all zeros
    -- the "no phones" input the network was trained with (phone dropout),
    so it falls back to the acoustic features.  Never raises for bad audio.
    """
    dim = VISEME_DIM + (PHONE_DIM if with_phones else 0)
    report = {} if report is None else report
    aligned = None
    try:
        if text is not None and text.strip():
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(1) as ex:       # the text aligns in one worker process while
                job = ex.submit(_try_aligned_phones, wave, text, sr)      # others decode the audio
                try:
                    phones = allphone_chunked(wave, sr, in_child=True)
                finally:
                    aligned = job.result()
        else:
            phones = allphone_chunked(wave, sr, in_child=True)
    except PhoneError as exc:
        report["phones"] = f"no phones ({exc}): acoustic features only"
        return np.zeros((int(num_frames), dim), np.float32)
    report["phones"] = "phones decoded from the audio (allphone)"
    if aligned is not None:
        phones = _text_phones(aligned, phones, num_frames, fps, report)
    vis = viseme_track(phones, num_frames, fps)
    return np.concatenate([vis, phone_track(phones, num_frames, fps)], axis=1) if with_phones else vis


#: Aligned phones are used when their visemes agree with the decoded ones on
#: at least this share of the speech frames.  Chosen on the dev clips: the
#: right text 0.25 (arctic_a0009) and 0.56 (beat2_scott_2_2); another line,
#: French, or another clip's text 0.02–0.14 (``model/align.py``).
TEXT_AGREEMENT = 0.2


def aligned_phones(wave: np.ndarray, text: str, sr: int = 16000) -> tuple[list[Phone], list[str]]:
    """Phones of ``text`` aligned with ``wave`` (:func:`model.align.align`) and
    the words the dictionary lacks.  Raises ``model.align.AlignError``."""
    from .align import align
    res = align(wave, text, sr)
    return _phones(res.segments), res.unknown


def _try_aligned_phones(wave, text: str, sr: int):
    """:func:`aligned_phones`, or the exception it raised (returned, not raised: a text
    never stops a take -- ``AlignError``, or anything a broken worker process gives)."""
    try:
        return aligned_phones(wave, text, sr)
    except Exception as exc:   # noqa: BLE001 - the take falls back to the decoded phones and says why
        return exc


def _text_phones(aligned, decoded: list, num_frames: int, fps: float, report: dict) -> list:
    """The text's aligned phones (``aligned``: :func:`_try_aligned_phones`) when they fit
    the speech (:data:`TEXT_AGREEMENT`), else ``decoded``."""
    if isinstance(aligned, Exception):
        report["phones"] = f"text not aligned ({aligned}): phones decoded from the audio instead"
        return decoded
    phones, unknown = aligned
    va, vd = viseme_track(phones, num_frames, fps).argmax(1), viseme_track(decoded, num_frames, fps).argmax(1)
    speech = (va != 0) | (vd != 0)
    agree = float((va[speech] == vd[speech]).mean()) if speech.any() else 0.0
    if agree < TEXT_AGREEMENT:
        report["phones"] = (f"text not aligned (it does not match the speech: {100 * agree:.0f} % viseme "
                            "agreement with the decoded phones): phones decoded from the audio instead")
        return decoded
    report["phones"] = (f"phones aligned to the text ({len(phones)} phones, {100 * agree:.0f} % agreement"
                        + (f"; not in the dictionary: {', '.join(unknown[:6])}" if unknown else "") + ")")
    return phones


def centre_frames(phones: list[Phone], num_frames: int, fps: float = 30.0,
                  labels: frozenset | None = None) -> np.ndarray:
    """Frame indices (int) of the centres of ``phones`` (only ``labels`` if given) within [0, num_frames)."""
    idx = [int(round(p.centre * fps)) for p in phones if labels is None or p.label in labels]
    return np.array([i for i in idx if 0 <= i < num_frames], dtype=np.int64)


def phoneme_contrast(jaw: np.ndarray, phones: list[Phone], fps: float = 30.0) -> float:
    """The phoneme lip-sync contrast of a jaw-opening curve (see module doc).

    Args:
        jaw: (T,) jaw opening per frame (radians, or any opening measure).
        phones: alignment of the same audio (seconds from frame 0).
    Returns:
        The contrast (dimensionless); NaN when there are no open vowels, no
        bilabials, or the jaw does not vary at phone centres.
    """
    jaw = np.asarray(jaw, np.float64).reshape(-1)
    allc = centre_frames(phones, len(jaw), fps)
    op = centre_frames(phones, len(jaw), fps, OPEN_VOWELS)
    bl = centre_frames(phones, len(jaw), fps, BILABIALS)
    if len(op) == 0 or len(bl) == 0 or len(allc) < 3:
        return float("nan")
    sd = float(jaw[allc].std())
    if sd <= 1e-12:
        return float("nan")
    return float((jaw[op].mean() - jaw[bl].mean()) / sd)


def jaw_opening(poses: np.ndarray) -> np.ndarray:
    """(T,) SMPL-X jaw opening: the norm of the jaw axis-angle ``poses[:, 66:69]`` (radians)."""
    return np.linalg.norm(np.asarray(poses)[:, 66:69], axis=1)
