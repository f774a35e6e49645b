"""Benchmark the batch folder mode: throughput with 1 and with N local Ray workers.

    .venv/bin/python tools/bench_batch.py [--files 200] [--workers 2] [--keep DIR]

Makes ``--files`` speech-like files of 5-20 s (random stretches of the
bundled demo clip and, when ``../shared`` is there, of the BEAT2 speech and
the dev clips, with random gain; 16 kHz WAV), then runs
``tools/cospeech_cli.py FOLDER --out ... --no-preview --workers K`` for K = 1
and K = ``--workers`` into fresh folders, and prints files per second, audio
seconds per second and the speed-up.  Prints numbers; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def make_files(root: Path, n: int, seed: int = 0) -> float:
    """Write ``n`` files under ``root``; returns their total length in seconds."""
    sources = [REPO / "tools" / "demo_audio" / "arctic_a0007.wav"]
    sources += sorted((SHARED / "beat2" / "wave16k").glob("*.wav")) + sorted((SHARED / "dev_audio").glob("*.wav"))
    waves = []
    for s in sources:
        if s.exists():
            w, sr = sf.read(s, dtype="float32", always_2d=True)
            if sr == 16000:
                waves.append(w.mean(1))
    rng = np.random.default_rng(seed)
    total = 0.0
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        length = rng.uniform(5.0, 20.0)
        w = waves[int(rng.integers(len(waves)))]
        reps = int(np.ceil(length * 16000 / len(w))) + 1
        w = np.tile(w, reps)                                  # short sources repeat
        a = int(rng.integers(0, len(w) - int(length * 16000)))
        sf.write(root / f"line{i:04d}.wav", w[a:a + int(length * 16000)] * rng.uniform(0.4, 1.0), 16000)
        total += length
    return total


def run(src: Path, out: Path, workers: int) -> float:
    t = time.perf_counter()
    res = subprocess.run([sys.executable, str(REPO / "tools" / "cospeech_cli.py"), str(src), "--out", str(out),
                          "--no-preview", "--workers", str(workers)], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(res.stdout[-2000:] + res.stderr[-2000:])
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cospeech_bench_batch_"))
    audio_s = make_files(work / "in", args.files)
    print(f"{args.files} files, {audio_s / 60:.1f} min of speech-like audio (5-20 s each)")
    times = {}
    for k in sorted({1, args.workers}):
        times[k] = run(work / "in", work / f"out{k}", k)
        recs = [json.loads(x) for x in (work / f"out{k}" / "manifest.jsonl").read_text().splitlines()]
        per_file = np.median([r["seconds"] for r in recs])
        print(f"{k} worker(s): {times[k]:.1f} s wall, {args.files / times[k]:.2f} files/s, "
              f"{audio_s / times[k]:.1f} s of audio per s, median {per_file:.2f} s per file in a worker")
    if args.workers != 1:
        print(f"speed-up with {args.workers} workers: {times[1] / times[args.workers]:.2f}x (target >= 1.7x)")
    same = all((work / "out1" / p.relative_to(work / f"out{args.workers}")).read_bytes() == p.read_bytes()
               for p in (work / f"out{args.workers}").rglob("*.npz"))
    print(f"npz outputs byte-identical between the runs: {same}")


if __name__ == "__main__":
    main()
