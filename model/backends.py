"""Backends that evaluate the CoSpeech denoiser for the numpy sampler (``flow.sample``).

Never imports bpy; imports torch / onnxruntime only inside the backend that
needs it, so the packaged Blender extension can generate with ONNX Runtime
alone (Linux PyPI torch is a multi-GB CUDA build and is not bundled).

* :class:`TorchDenoiser` -- the PyTorch ``CoSpeechNet`` on a torch device
  (CPU or CUDA).  Used for training/evaluation and whenever torch is installed.
* :class:`OnnxDenoiser` -- ``cospeech.onnx`` (exported by :func:`export_onnx`)
  in ONNX Runtime, CUDAExecutionProvider when onnxruntime-gpu offers it and
  the user asked for ``auto``/``cuda``, else CPUExecutionProvider.

Both are callables with the ``flow.Denoiser`` signature
``(x, t, audio, style, known, mask_f, drop_audio, drop_style) -> x1_hat`` on
numpy arrays (float32 / int64 / bool; shapes in ``flow.Denoiser``).  For the
same inputs they agree to ~1e-5 (float32 rounding; see
``tests/test_model_backends.py``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from .network import CoSpeechNet

#: ONNX graph input names, in the order of ``flow.Denoiser``'s arguments.
ONNX_INPUTS = ("x", "t", "audio", "style", "known", "mask", "drop_audio", "drop_style")
ONNX_OUTPUT = "x1_hat"
ONNX_OPSET = 17
BACKENDS = ("auto", "torch", "onnx")
_CUDA_EP = "CUDAExecutionProvider"
_CPU_EP = "CPUExecutionProvider"
CUDA_FALLBACK_WARNING = "CUDA was requested but no CUDA GPU is available; running on the CPU instead."


class BackendError(RuntimeError):
    """The requested backend's runtime (torch / onnxruntime) is not installed."""


def torch_available() -> bool:
    """True if ``import torch`` works (never raises)."""
    try:
        import torch  # noqa: F401
    except Exception:
        return False
    return True


def resolve_backend(backend: str = "auto") -> str:
    """``"auto"`` -> ``"torch"`` if torch imports, else ``"onnx"``; others validated.

    Raises:
        ValueError: not one of :data:`BACKENDS`.
    """
    b = (backend or "auto").lower()
    if b not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if b == "auto":
        return "torch" if torch_available() else "onnx"
    return b


def _check_device(requested: str) -> str:
    req = (requested or "auto").lower()
    if req not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    return req


def onnx_providers(requested: str = "auto") -> tuple[list[str], str]:
    """ONNX Runtime execution providers for a device request.

    Args:
        requested: "auto" (CUDA if onnxruntime-gpu reports CUDAExecutionProvider,
            else CPU), "cpu" or "cuda".
    Returns:
        (providers, warning): ``providers`` for ``InferenceSession``; ``warning``
        is "" unless CUDA was requested but is not available (then CPU is used).
    Raises:
        ValueError: bad ``requested``.  BackendError: onnxruntime not installed.
    """
    req = _check_device(requested)
    try:
        import onnxruntime as ort
    except Exception as exc:
        raise BackendError(f"onnxruntime is not installed ({exc})") from exc
    has_cuda = _CUDA_EP in ort.get_available_providers()
    if req == "cpu":
        return [_CPU_EP], ""
    if req == "cuda" and not has_cuda:
        return [_CPU_EP], CUDA_FALLBACK_WARNING
    return ([_CUDA_EP, _CPU_EP] if has_cuda else [_CPU_EP]), ""


class TorchDenoiser:
    """``CoSpeechNet`` as a numpy ``flow.Denoiser`` on a torch device.

    Args:
        net: the network (moved to ``device`` and put in eval mode).
        device: torch.device or string ("cpu", "cuda", "cuda:1").
    """

    backend = "torch"

    def __init__(self, net: "CoSpeechNet", device="cpu"):
        import torch
        self._torch = torch
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    def __call__(self, x, t, audio, style, known, mask_f, drop_audio, drop_style) -> np.ndarray:
        torch, dev = self._torch, self.device

        def f(a, dtype):
            return torch.from_numpy(np.ascontiguousarray(a, dtype)).to(dev)

        with torch.no_grad():
            y = self.net(f(x, np.float32), f(t, np.float32), f(audio, np.float32), f(style, np.int64),
                         f(known, np.float32), f(mask_f, np.float32), f(drop_audio, bool), f(drop_style, bool))
        return y.float().cpu().numpy()


class OnnxDenoiser:
    """``cospeech.onnx`` in ONNX Runtime as a numpy ``flow.Denoiser``.

    Args:
        path: the .onnx file written by :func:`export_onnx`.
        providers: ONNX Runtime execution providers (default: from
            :func:`onnx_providers` for ``device``).
        device: "auto" | "cpu" | "cuda" when ``providers`` is None; the
            CUDA-unavailable warning is kept in ``self.warning``.
        threads: intra-op threads (None = ONNX Runtime default, all cores).
    Raises:
        FileNotFoundError: ``path`` missing.  BackendError: onnxruntime not
        installed.  RuntimeError: the file is not a loadable ONNX model or its
        inputs are not the CoSpeech denoiser's (message says which).
    """

    backend = "onnx"

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None, device: str = "auto",
                 threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(str(self.path))
        self.warning = ""
        if providers is None:
            providers, self.warning = onnx_providers(device)
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=list(providers))
        except Exception as exc:
            raise RuntimeError(f"cannot load ONNX model {self.path}: {exc}") from exc
        names = tuple(i.name for i in self.session.get_inputs())
        if names != ONNX_INPUTS:
            raise RuntimeError(f"ONNX model {self.path} has inputs {names}, expected {ONNX_INPUTS}")
        self.providers = self.session.get_providers()
        self.device = "cuda" if self.providers and self.providers[0] == _CUDA_EP else "cpu"
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x, t, audio, style, known, mask_f, drop_audio, drop_style) -> np.ndarray:
        feed = {"x": np.ascontiguousarray(x, np.float32), "t": np.ascontiguousarray(t, np.float32),
                "audio": np.ascontiguousarray(audio, np.float32), "style": np.ascontiguousarray(style, np.int64),
                "known": np.ascontiguousarray(known, np.float32), "mask": np.ascontiguousarray(mask_f, np.float32),
                "drop_audio": np.ascontiguousarray(drop_audio, bool),
                "drop_style": np.ascontiguousarray(drop_style, bool)}
        return self.session.run([ONNX_OUTPUT], feed)[0]


def _export_mha(mha):
    """An export-friendly stand-in for a batch-first ``nn.MultiheadAttention`` (same weights).

    The TorchScript exporter bakes the example's sequence length into
    ``nn.MultiheadAttention``'s internal reshapes; this module does the same
    computation (packed in-projection, scaled dot product with a boolean
    ``attn_mask`` = True -> not allowed, softmax, out-projection) with
    shape-agnostic reshapes.  Dropout is not applied (eval only).
    """
    import torch
    from torch import nn

    class ExportMHA(nn.Module):
        def __init__(self, m):
            super().__init__()
            assert m.batch_first and m._qkv_same_embed_dim and m.in_proj_bias is not None
            self.h, self.d = m.num_heads, m.embed_dim
            self.in_proj_weight, self.in_proj_bias, self.out_proj = m.in_proj_weight, m.in_proj_bias, m.out_proj

        def forward(self, query, key, value, attn_mask=None, need_weights=False):
            d, h = self.d, self.h
            w, b = self.in_proj_weight, self.in_proj_bias
            q = nn.functional.linear(query, w[:d], b[:d])
            k = nn.functional.linear(key, w[d:2 * d], b[d:2 * d])
            v = nn.functional.linear(value, w[2 * d:], b[2 * d:])

            def heads(z):  # (B, T, d) -> (B, h, T, d/h)
                return z.unflatten(-1, (h, d // h)).transpose(1, 2)

            s = heads(q) @ heads(k).transpose(-1, -2) * (d // h) ** -0.5
            if attn_mask is not None:
                s = s.masked_fill(attn_mask, float("-inf"))
            o = (s.softmax(-1) @ heads(v)).transpose(1, 2).flatten(2)
            return self.out_proj(o), None

    return ExportMHA(mha)


def export_onnx(net: "CoSpeechNet", path: str | os.PathLike, *, opset: int = ONNX_OPSET,
                metadata: dict[str, str] | None = None) -> Path:
    """Export ``net`` (float32, eval mode, CPU) to an ONNX file for :class:`OnnxDenoiser`.

    TorchScript-based exporter (``torch.onnx.export(dynamo=False)``), opset
    ``opset`` (>= 17), inputs :data:`ONNX_INPUTS` with dynamic batch (``B``)
    and time (``T``) axes: x/known (B, T, 460) float32, t (B,) float32,
    audio (B, T, A) float32, style (B,) int64, mask (B, T) float32,
    drop_audio/drop_style (B,) bool; output ``x1_hat`` (B, T, 460) float32.
    ``metadata`` is stored as ONNX metadata_props (strings).

    Returns:
        the written path.  Raises: whatever torch.onnx.export raises.
    """
    import copy

    import torch
    from .representation import FRAME_DIM
    if opset < 17:
        raise ValueError("opset must be >= 17")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(net).float().cpu().eval()
    for blk in net.blocks:
        blk.sa, blk.ca = _export_mha(blk.sa), _export_mha(blk.ca)
    B, T = 2, 24
    ex = (torch.zeros(B, T, FRAME_DIM), torch.full((B,), 0.5), torch.zeros(B, T, net.cfg.audio_dim),
          torch.zeros(B, dtype=torch.long), torch.zeros(B, T, FRAME_DIM), torch.zeros(B, T),
          torch.tensor([False, True]), torch.tensor([False, True]))
    axes = {"x": {0: "B", 1: "T"}, "t": {0: "B"}, "audio": {0: "B", 1: "T"}, "style": {0: "B"},
            "known": {0: "B", 1: "T"}, "mask": {0: "B", 1: "T"}, "drop_audio": {0: "B"}, "drop_style": {0: "B"},
            ONNX_OUTPUT: {0: "B", 1: "T"}}
    tmp = path.with_name(path.name + ".tmp")
    import warnings
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based exporter": intended
        torch.onnx.export(net, ex, str(tmp), dynamo=False, opset_version=opset, input_names=list(ONNX_INPUTS),
                          output_names=[ONNX_OUTPUT], dynamic_axes=axes, do_constant_folding=True)
    if metadata:
        import onnx
        m = onnx.load(str(tmp))
        for k, v in metadata.items():
            p = m.metadata_props.add()
            p.key, p.value = str(k), str(v)
        onnx.save(m, str(tmp))
    os.replace(tmp, path)
    os.chmod(path, 0o644)
    return path


class Device(str):
    """Device name ("cpu" / "cuda") with a ``.type`` attribute like ``torch.device``.

    Returned by :func:`select_device` when the backend is ONNX Runtime (no
    torch needed); ``str(dev)`` and ``dev.type`` are the device name.
    """

    @property
    def type(self) -> str:
        return str(self)


def select_device(requested: str = "auto", backend: str = "auto") -> tuple["torch.device | Device", str]:
    """Pick the device for a backend.

    Args:
        requested: "auto" (CUDA if available else CPU), "cpu" or "cuda".
        backend: "auto" (torch if importable, else onnx), "torch" or "onnx".
            torch: CUDA = ``torch.cuda.is_available()``; onnx: CUDA = onnxruntime
            reports ``CUDAExecutionProvider`` (onnxruntime-gpu).
    Returns:
        (device, warning): ``device`` is a ``torch.device`` for the torch
        backend, a :class:`Device` (str with ``.type``) for onnx; ``warning``
        is "" unless CUDA was requested but is not available, in which case
        the CPU is returned with a message.
    Raises:
        ValueError: ``requested`` or ``backend`` is not a valid value.
        BackendError: the backend's runtime is not installed.
    """
    req = (requested or "auto").lower()
    if req not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    if resolve_backend(backend) == "onnx":
        providers, warn = onnx_providers(req)
        return Device("cuda" if providers[0] == "CUDAExecutionProvider" else "cpu"), warn
    try:
        import torch
    except Exception as exc:
        raise BackendError(f"PyTorch is not installed ({exc}); use backend='onnx'") from exc
    has_cuda = torch.cuda.is_available()
    if req == "cpu":
        return torch.device("cpu"), ""
    if req == "cuda" and not has_cuda:
        return torch.device("cpu"), CUDA_FALLBACK_WARNING
    return (torch.device("cuda") if has_cuda else torch.device("cpu")), ""


def device_summary(requested: str = "auto", backend: str = "auto") -> str:
    """One-line description of where generation will run, for UIs.

    E.g. ``"PyTorch on GPU: NVIDIA RTX A4000 (15.7 GiB)"``, ``"ONNX Runtime on CPU"``;
    with the CUDA-fallback warning appended when CUDA was requested but is
    unavailable.  Never imports torch when the backend is onnx.
    Raises: ValueError / BackendError as :func:`select_device`.
    """
    be = resolve_backend(backend)
    dev, warn = select_device(requested, be)
    name = "PyTorch" if be == "torch" else "ONNX Runtime"
    where = "CPU"
    if dev.type == "cuda":
        where = "GPU"
        if be == "torch":
            import torch
            p = torch.cuda.get_device_properties(dev)
            where = f"GPU: {p.name} ({p.total_memory / 2 ** 30:.1f} GiB)"
    return f"{name} on {where}" + (f" ({warn})" if warn else "")
