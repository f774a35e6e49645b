"""Speed / memory benchmark of feature extraction and sampling (prints, never asserts).

    python -m model.training.benchmark [--weights DIR] [--device cpu] [--threads 1] [--backend torch|onnx]

For synthetic speech-like audio of 10 s, 60 s and 10 min it prints, for the
feature extractor and for the sampler at 1, 4 and 10 Euler steps (guidance 2,
i.e. two network passes per step, batched): wall time, frames per second of
output (30 fps frames / wall second) and seconds per minute of audio.  Peak
memory is the process's own resident high-water mark (:func:`peak_rss_mib`,
monotone, so it is printed after each size, smallest first) plus the peak of Python-level allocations
in the step (``tracemalloc``; does not see torch's / ONNX Runtime's C++ allocators).
``--backend`` picks the network runtime (``auto`` = torch if installed);
``--threads`` sets torch's threads or ONNX Runtime's intra-op threads.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np


def _speechlike(seconds: float, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    env = (np.sin(2 * np.pi * 2.3 * t) + 0.4 * np.sin(2 * np.pi * 0.31 * t) > 0.3).astype(np.float32)
    return (env * (0.2 * np.sin(2 * np.pi * (120 + 30 * np.sin(t)) * t) + 0.03 * rng.standard_normal(t.size))).astype(np.float32)


def peak_rss_mib() -> float:
    """This process's own peak resident memory in MiB: ``VmHWM`` of
    /proc/self/status (Linux; the high-water mark of this program's address
    space).  ``ru_maxrss`` is only the fallback (other systems): Linux carries
    the parent's resident size at fork/vfork over the exec into it, so a
    small program started from a large pytest process would report pytest's
    size (proc(5), getrusage(2))."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.benchmark", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    ap.add_argument("--durations", type=float, nargs="+", default=[10.0, 60.0, 600.0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 4, 10])
    args = ap.parse_args(argv)
    from ..backends import resolve_backend
    from ..features import audio_features, network_features
    from ..generate import Generator
    backend = resolve_backend(args.backend)
    if backend == "torch":
        import torch
        torch.set_num_threads(args.threads)
    gen = Generator.load(args.weights, args.device, backend=backend, threads=args.threads)
    print(f"backend {gen.backend}, device {gen.device}, threads {args.threads}, window {gen.window} frames, "
          f"overlap {gen.overlap}; RSS after load {peak_rss_mib():.0f} MB")
    audio_features(_speechlike(1.0))  # warm-up (numba caches inside librosa)
    print(f"{'audio':>8} {'part':>10} {'wall s':>8} {'frames/s':>10} {'s per audio min':>16} {'py peak MB':>11} {'max RSS MB':>11}")
    for dur in args.durations:
        w = _speechlike(dur)
        T = int(np.ceil(dur * 30))
        tracemalloc.start()
        t0 = time.perf_counter()
        network_features(w, 16000, visemes=gen.visemes, phones=gen.phones)      # acoustic columns (+ phone decoding)
        dt = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
        print(f"{dur:7.0f}s {'features':>10} {dt:8.2f} {T / dt:10.0f} {dt / (dur / 60):16.2f} {peak:11.1f} {peak_rss_mib():11.0f}")
        for steps in args.steps:
            tracemalloc.start()
            t0 = time.perf_counter()
            gen.generate(w, 16000, steps=steps, seed=0)
            dt_all = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
            tracemalloc.stop()
            samp = max(dt_all - dt, 1e-9)  # generate() = features + sampling + decode
            print(f"{dur:7.0f}s {f'sample x{steps}':>10} {samp:8.2f} {T / samp:10.0f} {samp / (dur / 60):16.2f} "
                  f"{peak:11.1f} {peak_rss_mib():11.0f}   (generate() total {dt_all:.2f} s)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
