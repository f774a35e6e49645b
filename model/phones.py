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

Never imports bpy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

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

    Uses the wheel's en-us model (``pocketsphinx.get_model_path()``), phone
    bigram ``en-us-phone.lm.bin``, language weight 2, wide beams (the
    settings of PocketSphinx's phoneme-recognition tutorial).  Frames are
    10 ms.  Silence, noise, music or other languages give few or no phones,
    never an error.

    Raises:
        PhoneError: pocketsphinx is not installed, or ``sr`` is not 16 kHz.
    """
    if sr != 16000:
        raise PhoneError(f"allphone needs 16 kHz audio, got {sr} Hz")
    try:
        from pocketsphinx import Decoder, get_model_path
    except ImportError as exc:
        raise PhoneError(f"pocketsphinx is not installed ({exc})") from exc
    mp = get_model_path()
    dec = Decoder(hmm=os.path.join(mp, "en-us", "en-us"), allphone=os.path.join(mp, "en-us", "en-us-phone.lm.bin"),
                  lw=2.0, beam=1e-20, pbeam=1e-20, samprate=16000, loglevel="FATAL")
    pcm = (np.clip(np.asarray(wave, np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    out = [Phone(_clean(s.word), s.start_frame / 100.0, (s.end_frame + 1) / 100.0) for s in dec.seg()]
    return [p for p in out if p.label not in _NOT_PHONES]


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
