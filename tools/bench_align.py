"""Dialogue text vs allphone on beat2_scott_2_2 (the dev clip with a TextGrid):
share of the TextGrid's phone centres with a phone centre within ±1 frame
(30 fps), with and without the same label; seconds each takes; and the jaw
phoneme contrast (judged with the TextGrid's phones) of the bundled model's
takes made with each, 3 seeds, 8 steps, guidance 2, moderate.  The text is
the TextGrid's own word tier.  Prints numbers, asserts nothing.

Run:  .venv/bin/python tools/bench_align.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from model import phones as ph  # noqa: E402
from model.features import load_audio  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "dev_audio"


def share(cands, ref, same_label: bool) -> float:
    c = np.array([p.centre for p in cands])
    hits = 0
    for r in ref:
        near = np.abs(c - r.centre) <= 1 / 30 + 1e-9
        if same_label:
            near &= np.array([p.label == r.label for p in cands])
        hits += bool(near.any())
    return hits / len(ref)


def _timed_in_thread(fn) -> tuple[float, float]:
    """Run ``fn`` in a thread (as Generate does inside Blender); return its seconds and the
    longest the main thread waited for a 10 ms sleep meanwhile (PocketSphinx holds the GIL)."""
    import threading
    th, gaps = threading.Thread(target=fn), [0.0]
    t = last = time.perf_counter()
    th.start()
    while th.is_alive():
        time.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    return time.perf_counter() - t, max(gaps)


def main() -> int:
    wav, tg = DEV / "beat2_scott_2_2.wav", DEV / "beat2_scott_2_2.TextGrid"
    if not wav.exists():
        print(f"error: {wav} not found (../shared/data)", file=sys.stderr)
        return 2
    from praatio import textgrid
    text = " ".join(e.label for e in textgrid.openTextgrid(str(tg), includeEmptyIntervals=False)
                    .getTier("words").entries)
    wave = load_audio(wav)
    ref = ph.textgrid_phones(tg)
    t = time.perf_counter()
    aligned = ph.aligned_phones(wave, text)[0]
    t_align = time.perf_counter() - t
    t = time.perf_counter()
    ph.aligned_phones(wave, text)              # again: the aligner's Decoder is kept (model/align.py)
    t_warm = time.perf_counter() - t
    t = time.perf_counter()
    decoded = ph.allphone(wave)
    t_all = time.perf_counter() - t
    print(f"{wav.name}: {len(wave) / 16000:.1f} s, {len(ref)} TextGrid phones")
    for name, cands, sec in (("aligned to the text", aligned, t_align), ("allphone", decoded, t_all)):
        print(f"  {name:20s}: {len(cands)} phones, centres within ±1 frame {100 * share(cands, ref, False):.1f} %, "
              f"same label {100 * share(cands, ref, True):.1f} %, {sec:.2f} s")
    print(f"  aligned again (the Decoder kept): {t_warm:.2f} s")
    T = int(np.ceil(len(wave) / 16000 * 30))
    from model.align import align
    ways = {"decoded + aligned side by side (worker processes)": lambda: ph.viseme_features(wave, T, text=text),
            "decoded, then aligned in this process (until 12-06)": lambda: (ph.allphone_chunked(wave),
                                                                            align(wave, text, in_child=False)),
            "decoded only": lambda: ph.viseme_features(wave, T)}
    times, stalls = {k: [] for k in ways}, {k: [] for k in ways}
    for _ in range(3):                        # interleaved: this machine's speed drifts within minutes
        for name, fn in ways.items():
            d, stall = _timed_in_thread(fn)
            times[name].append(d)
            stalls[name].append(stall)
    for name in ways:
        print(f"  the take's phones, {name:52s}: median {np.median(times[name]):.2f} s of 3; "
              f"the main thread's longest wait for a 10 ms tick {1000 * max(stalls[name]):.0f} ms")
    from model.generate import Generator
    gen = Generator.load(device="cpu")
    for name, kw in (("with the text", {"text": text}), ("allphone", {})):
        cs = [ph.phoneme_contrast(ph.jaw_opening(gen.generate(wave, 16000, seed=s, steps=8, guidance=2.0,
                                                              **kw).poses), ref) for s in (0, 1, 2)]
        print(f"  jaw phoneme contrast, takes {name:14s}: " + " / ".join(f"{c:.2f}" for c in cs)
              + f" (mean {np.mean(cs):.2f}); {gen.phones_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
