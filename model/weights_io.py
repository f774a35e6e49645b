"""The weights folder on disk: file names, the format tag, checks with a
message for the user, reading the config and the PyTorch network.  Pure
Python; PyTorch and safetensors are imported only by :func:`load_torch_net`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .representation import Normaliser

if TYPE_CHECKING:
    from .network import CoSpeechNet

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = "cospeech.safetensors"
CONFIG_FILE = "cospeech.json"
ONNX_FILE = "cospeech.onnx"
FORMAT = "cospeech-weights-1"
#  (``python -m model.training.export_onnx`` writes ONNX_FILE from WEIGHTS_FILE)


class WeightsError(RuntimeError):
    """The weights files are missing, unreadable, corrupt or do not match the network."""


def safetensors_sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_files(*paths: Path) -> None:
    for p in paths:
        if not p.is_file():
            hint = ("export it with `python -m model.training.export_onnx --weights DIR` (needs PyTorch)"
                    if p.name == ONNX_FILE else
                    "reinstall the extension or retrain with `python -m model.training.train`")
            raise WeightsError(f"CoSpeech weights missing: {p} not found ({hint}).")


def load_config(cpath: Path) -> tuple[dict, Normaliser]:
    try:
        meta = json.loads(cpath.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        for k in ("d_model", "n_layers", "n_heads", "audio_dim", "n_styles"):
            int(meta["net"][k])
        normaliser = Normaliser.from_json(meta["normaliser"])
    except Exception as exc:
        raise WeightsError(f"CoSpeech weights config {cpath} is corrupt: {exc}") from exc
    return meta, normaliser


def load_torch_net(d: Path) -> tuple["CoSpeechNet", Normaliser, dict]:
    """(net on CPU, normaliser, meta) from ``d``; WeightsError on any problem."""
    import torch
    from .network import CoSpeechNet, NetConfig
    wpath, cpath = d / WEIGHTS_FILE, d / CONFIG_FILE
    check_files(wpath, cpath)
    meta, normaliser = load_config(cpath)
    try:
        cfg = NetConfig(**meta["net"])
    except Exception as exc:
        raise WeightsError(f"CoSpeech weights config {cpath} is corrupt: {exc}") from exc
    try:
        from safetensors.torch import load_file
        state = load_file(str(wpath))
    except Exception as exc:
        raise WeightsError(f"CoSpeech weights file {wpath} is corrupt or unreadable: {exc}") from exc
    net = CoSpeechNet(cfg)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except Exception as exc:
        raise WeightsError(f"CoSpeech weights {wpath} do not match the network: {exc}") from exc
    if not all(torch.isfinite(p).all() for p in net.parameters()):
        raise WeightsError(f"CoSpeech weights {wpath} contain NaN or infinite values")
    return net.eval(), normaliser, meta
