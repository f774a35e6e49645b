"""PocketSphinx ``allphone`` phone decoding, importable on its own.

This module imports nothing of the CoSpeech package, so it also runs as a
plain script in a child process (``python allphone_worker.py`` with 16 kHz
little-endian int16 PCM on stdin, one ``LABEL START END`` line per segment
on stdout, seconds).  :mod:`model.phones` decodes long audio in chunks on
several such processes in parallel: PocketSphinx holds Python's GIL while it
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


def decode_pcm16(pcm: bytes) -> list[tuple[str, float, float]]:
    """(raw label, start s, end s) of every segment PocketSphinx finds in 16 kHz int16 PCM.

    Labels are the decoder's (``SIL``, ``+NSN+``, ARPAbet phones).
    Raises ImportError when pocketsphinx is not installed.
    """
    from pocketsphinx import Decoder, get_model_path
    mp = get_model_path()
    dec = Decoder(hmm=os.path.join(mp, "en-us", "en-us"), allphone=os.path.join(mp, "en-us", "en-us-phone.lm.bin"),
                  lw=2.0, beam=1e-13, pbeam=1e-13, samprate=SAMPLE_RATE, loglevel="FATAL")
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    return [(s.word, s.start_frame / 100.0, (s.end_frame + 1) / 100.0) for s in dec.seg()]


def main() -> int:
    for label, start, end in decode_pcm16(sys.stdin.buffer.read()):
        sys.stdout.write(f"{label} {start:.2f} {end:.2f}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
