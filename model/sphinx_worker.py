"""PocketSphinx in kept child processes: ``allphone`` phone decoding and
forced alignment of a text, importable on its own.

This module imports nothing of the CoSpeech package, so it also runs as a
plain script in a child process (``python sphinx_worker.py`` with 16 kHz
little-endian int16 PCM on stdin, one ``LABEL START END`` line per segment
on stdout, seconds; ``--serve``: many requests, see :func:`serve`).
PocketSphinx holds Python's GIL while it decodes, so threads would not
overlap: :mod:`model.phones` decodes long audio in chunks on several such
processes in parallel, and aligns a line's text in one while others decode
the same audio (:func:`request`).  Inside Blender the package is imported
as ``bl_ext.<repo>.cospeech.model`` -- a name a child interpreter cannot
import, hence a script rather than ``multiprocessing``.

Allphone decoder settings: the wheel's en-us acoustic model
(``pocketsphinx.get_model_path()``), phone bigram ``en-us-phone.lm.bin``,
language weight 2 (PocketSphinx's phoneme-recognition tutorial,
cmusphinx.github.io/wiki/phonemerecognition), beams 1e-13: the tutorial's
1e-20 decodes nearly the same phones on the dev clips (three of the four
English ``dev_audio`` clips identical, beat2_scott_2_2 552 of 556 segments,
the Mandarin FACEGOOD take 369 of 371) in 12–17 % less time; 1e-12 changes
them more.  10 ms frames.

Aligner: the same acoustic model with ``cmudict-en-us.dict``, two passes as
the PocketSphinx 5 documentation gives them (word alignment with
``set_align_text``, then ``set_alignment`` for phone-level times); see
:mod:`model.align` for the text side and the measurements.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

SAMPLE_RATE = 16000
_SCRIPT = os.path.abspath(__file__)
_IDLE: list = []               # kept worker processes not working now (request)
_POOL = threading.Lock()


class AlignFailure(RuntimeError):
    """PocketSphinx could not align the words with the audio; the message says why."""


def pcm16(wave) -> bytes:
    """Float samples in [-1, 1] (clipped) as 16-bit little-endian PCM bytes, what the decoders read."""
    import numpy as np
    return (np.clip(np.asarray(wave, np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def decoder():
    """A PocketSphinx allphone Decoder with the settings above.  Raises ImportError without pocketsphinx."""
    from pocketsphinx import Decoder, get_model_path
    mp = get_model_path()
    return Decoder(hmm=os.path.join(mp, "en-us", "en-us"), allphone=os.path.join(mp, "en-us", "en-us-phone.lm.bin"),
                   lw=2.0, beam=1e-13, pbeam=1e-13, samprate=SAMPLE_RATE, loglevel="FATAL")


def aligner():
    """A PocketSphinx Decoder with the en-us dictionary, for :func:`align_pcm16`.
    Loading the model and the 135 000-word dictionary takes ~0.5 s.  Raises ImportError."""
    from pocketsphinx import Decoder, get_model_path
    mp = get_model_path()
    return Decoder(hmm=os.path.join(mp, "en-us", "en-us"), dict=os.path.join(mp, "en-us", "cmudict-en-us.dict"),
                   samprate=SAMPLE_RATE, bestpath=False, loglevel="FATAL")


def _reset(dec, cmn):
    """The front end's noise estimate and cepstral mean carry over utterances: reset
    both, so a kept Decoder gives what a new one would (tests/test_model_align.py)."""
    dec.reinit_feat()
    dec.set_cmn(cmn)


def decode_pcm16(pcm: bytes, dec=None, cmn: str | None = None) -> list[tuple[str, float, float]]:
    """(raw label, start s, end s) of every segment PocketSphinx finds in 16 kHz int16 PCM.

    Labels are the decoder's (``SIL``, ``+NSN+``, ARPAbet phones).  ``dec``:
    a kept :func:`decoder` and its initial cepstral mean ``cmn``; its front
    end is reset first.  Raises ImportError when pocketsphinx is not installed.
    """
    if dec is None:
        dec = decoder()
    else:
        _reset(dec, cmn)
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    return [(s.word, s.start_frame / 100.0, (s.end_frame + 1) / 100.0) for s in dec.seg()]


def align_pcm16(pcm: bytes, words: list[str], dec=None, cmn: str | None = None
                ) -> tuple[list[tuple[str, float, float]], list[str]]:
    """Forced alignment of dictionary ``words`` (lower case) with 16 kHz int16 PCM.

    Returns:
        (segments, unknown): ``(PocketSphinx phone label, start s, end s)``
        of every phone, silences included, and the words the dictionary
        lacks (left out of the alignment).
    Raises:
        AlignFailure: no dictionary word, or no alignment found.  ImportError:
        pocketsphinx is not installed.
    """
    if dec is None:
        dec = aligner()
    else:
        _reset(dec, cmn)
    known = [w for w in words if dec.lookup_word(w) is not None]
    unknown = [w for w in words if dec.lookup_word(w) is None]
    if not known:
        raise AlignFailure("the text has no English dictionary word")
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
        raise AlignFailure(f"PocketSphinx could not align the text: {str(exc)[:80]}") from exc
    if result is None:
        raise AlignFailure("PocketSphinx found no alignment of the text with this audio")
    return [(p.name, p.start / 100.0, (p.start + p.duration) / 100.0) for word in result for p in word], unknown


def _take():
    """An idle worker, or None (the caller starts one)."""
    with _POOL:
        return _IDLE.pop() if _IDLE else None


def _give(child) -> None:
    with _POOL:
        _IDLE.append(child)


def close_workers() -> None:
    """Stop the idle workers (the next request starts new ones)."""
    with _POOL:
        idle, _IDLE[:] = list(_IDLE), []
    for child in idle:
        child.kill()
        child.wait()


def request(pcm: bytes, words: list[str] | None = None) -> list[tuple[str, float, float]] | tuple[list, list[str]]:
    """:func:`decode_pcm16` (``words`` None) or :func:`align_pcm16` in a kept child
    interpreter (``sys.executable sphinx_worker.py --serve``, this process's
    ``sys.path`` as PYTHONPATH), started on first use; one request at a time per
    child; idle children wait in :data:`_IDLE` and exit when this process does
    (their stdin closes).  The child works without this process's GIL, so a
    thread waiting here lets the others run.

    Raises:
        OSError: the child cannot start or dies (it is then dropped).
        AlignFailure: as :func:`align_pcm16`.
    """
    child = _take()
    if child is None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)     # Windows: no console window flashes up
        child = subprocess.Popen([sys.executable, _SCRIPT, "--serve"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, creationflags=flags)
    tail = b"" if words is None else b"A" + " ".join(words).encode()
    try:
        child.stdin.write(len(pcm).to_bytes(8, "little") + len(tail).to_bytes(4, "little") + pcm + tail)
        child.stdin.flush()
        segs, unknown, failure = [], [], None
        for line in iter(child.stdout.readline, b""):
            f = line.split()
            if f == [b"END"]:
                break
            if f[:1] == [b"FAIL"]:
                failure = line[4:].decode(errors="replace").strip()
            elif f[:1] == [b"UNKNOWN"]:
                unknown = [w.decode(errors="replace") for w in f[1:]]
            elif len(f) == 3:
                segs.append((f[0].decode(), float(f[1]), float(f[2])))
        else:
            raise OSError("the PocketSphinx worker exited")
    except BaseException:
        child.kill()
        raise
    _give(child)
    if failure is not None:
        raise AlignFailure(failure)
    return (segs, unknown) if words is not None else segs


def serve() -> int:
    """Work on requests until stdin closes: each is an 8-byte little-endian PCM
    length, a 4-byte little-endian length of what follows the PCM, the PCM, then
    either nothing (allphone decoding) or ``A`` and the words to align
    (space-separated, UTF-8).  The answer is ``UNKNOWN w …`` (alignment), one
    ``LABEL START END`` line per segment or ``FAIL message``, then ``END``.  The
    Decoders are made once, on first use (~0.15 s / ~0.5 s of start-up saved per
    request; :func:`request` keeps such workers)."""
    decs: dict = {}
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(12)
        if len(head) < 12:
            return 0
        pcm = inp.read(int.from_bytes(head[:8], "little"))
        tail = inp.read(int.from_bytes(head[8:], "little"))
        try:
            if tail[:1] == b"A":
                if "align" not in decs:
                    d = aligner()
                    decs["align"] = (d, d.get_cmn())
                try:
                    segs, unknown = align_pcm16(pcm, tail[1:].decode().split(), *decs["align"])
                except AlignFailure:
                    decs.pop("align", None)  # a failed search may leave an utterance open: start clean next time
                    raise
                out.write(("UNKNOWN " + " ".join(unknown) + "\n").encode())
            else:
                if "allphone" not in decs:
                    d = decoder()
                    decs["allphone"] = (d, d.get_cmn())
                segs = decode_pcm16(pcm, *decs["allphone"])
            for label, start, end in segs:
                out.write(f"{label} {start:.2f} {end:.2f}\n".encode())
        except AlignFailure as exc:
            out.write(f"FAIL {exc}\n".encode())
        out.write(b"END\n")
        out.flush()


def main() -> int:
    if sys.argv[1:] == ["--serve"]:
        return serve()
    for label, start, end in decode_pcm16(sys.stdin.buffer.read()):
        sys.stdout.write(f"{label} {start:.2f} {end:.2f}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
