"""PocketSphinx ``allphone`` phone decoding, importable on its own.

This module imports nothing of the CoSpeech package, so it also runs as a
plain script in a child process (``python allphone_worker.py`` with 16 kHz
little-endian int16 PCM on stdin, one ``LABEL START END`` line per segment
on stdout, seconds; ``--serve``: many requests, see :func:`serve`).
:mod:`model.phones` decodes long audio in chunks on several such processes
in parallel: PocketSphinx holds Python's GIL while it
decodes, so threads would not overlap.  Inside Blender the package is
imported as ``bl_ext.<repo>.cospeech.model`` -- a name a child interpreter
cannot import, hence a script rather than ``multiprocessing``.

Decoder settings: the wheel's en-us acoustic model
(``pocketsphinx.get_model_path()``), phone bigram ``en-us-phone.lm.bin``,
language weight 2 (PocketSphinx's phoneme-recognition tutorial,
cmusphinx.github.io/wiki/phonemerecognition), beams 1e-13: the tutorial's
1e-20 decodes nearly the same phones on the dev clips (three of the four
English ``dev_audio`` clips identical, beat2_scott_2_2 552 of 556 segments,
the Mandarin FACEGOOD take 369 of 371) in 12–17 % less time; 1e-12 changes
them more.  10 ms frames.
"""
from __future__ import annotations

import os
import sys

SAMPLE_RATE = 16000


def decoder():
    """A PocketSphinx allphone Decoder with the settings above.  Raises ImportError without pocketsphinx."""
    from pocketsphinx import Decoder, get_model_path
    mp = get_model_path()
    return Decoder(hmm=os.path.join(mp, "en-us", "en-us"), allphone=os.path.join(mp, "en-us", "en-us-phone.lm.bin"),
                   lw=2.0, beam=1e-13, pbeam=1e-13, samprate=SAMPLE_RATE, loglevel="FATAL")


def decode_pcm16(pcm: bytes, dec=None, cmn: str | None = None) -> list[tuple[str, float, float]]:
    """(raw label, start s, end s) of every segment PocketSphinx finds in 16 kHz int16 PCM.

    Labels are the decoder's (``SIL``, ``+NSN+``, ARPAbet phones).  ``dec``:
    a kept :func:`decoder` and its initial cepstral mean ``cmn``; its front
    end is reset first (it adapts to the previous utterance), so the result
    is the same as with a new Decoder.  Raises ImportError when pocketsphinx
    is not installed.
    """
    if dec is None:
        dec = decoder()
    else:
        dec.reinit_feat()
        dec.set_cmn(cmn)
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    return [(s.word, s.start_frame / 100.0, (s.end_frame + 1) / 100.0) for s in dec.seg()]


def serve() -> int:
    """Decode requests until stdin closes: each is an 8-byte little-endian
    length and that many bytes of PCM; the answer is one ``LABEL START END``
    line per segment, then ``END``.  The Decoder is made once (~0.15 s of
    start-up saved per request, :mod:`model.phones` keeps such workers)."""
    dec = decoder()
    cmn = dec.get_cmn()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(8)
        if len(head) < 8:
            return 0
        pcm = inp.read(int.from_bytes(head, "little"))
        for label, start, end in decode_pcm16(pcm, dec, cmn):
            out.write(f"{label} {start:.2f} {end:.2f}\n".encode())
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
