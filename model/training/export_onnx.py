"""(Re)export the bundled network for ONNX Runtime.

    python -m model.training.export_onnx [--weights DIR] [--check]

Reads ``cospeech.safetensors`` + ``cospeech.json`` from ``DIR`` (default the
bundled ``model/weights/``), writes ``cospeech.onnx`` beside them (float32,
opset 17, dynamic batch and time axes; see ``backends.export_onnx``) and, with
``--check`` (default on), compares ONNX Runtime with PyTorch on random
inputs and prints the max abs difference.  Needs PyTorch; never imports bpy.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def compare(weights_dir: str | Path | None = None, batch: int = 2, frames: int = 120, seed: int = 0) -> float:
    """Max abs difference of the torch and ONNX denoisers on random inputs (normalised units)."""
    from ..backends import OnnxDenoiser, TorchDenoiser
    from ..weights_io import DEFAULT_WEIGHTS_DIR, ONNX_FILE, load_torch_net
    from ..representation import FRAME_DIM
    d = Path(weights_dir) if weights_dir else DEFAULT_WEIGHTS_DIR
    net, _, meta = load_torch_net(d)
    tdn, odn = TorchDenoiser(net, "cpu"), OnnxDenoiser(d / ONNX_FILE, device="cpu", threads=1)
    rng = np.random.default_rng(seed)
    B, T, F, A = batch, frames, FRAME_DIM, net.cfg.audio_dim
    args = (rng.standard_normal((B, T, F), dtype=np.float32), rng.random(B, dtype=np.float32),
            rng.standard_normal((B, T, A), dtype=np.float32), rng.integers(0, net.cfg.n_styles, B),
            rng.standard_normal((B, T, F), dtype=np.float32), (rng.random((B, T)) < 0.3).astype(np.float32),
            np.arange(B) % 2 == 1, np.arange(B) % 2 == 1)
    return float(np.abs(tdn(*args) - odn(*args)).max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.export_onnx", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=None, help="weights folder (default: bundled model/weights)")
    ap.add_argument("--no-check", action="store_true", help="skip the torch vs ONNX Runtime comparison")
    args = ap.parse_args(argv)
    from ..generate import WeightsError, export_bundle_onnx
    try:
        path = export_bundle_onnx(args.weights)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 2 ** 20:.2f} MiB)")
    if not args.no_check:
        print(f"max |torch - onnx| on random inputs: {compare(args.weights):.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
