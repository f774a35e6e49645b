"""Public generation API (what the Blender add-on and the CLI call).

Pure Python/PyTorch; never imports bpy.

Usage::

    from .generate import Generator
    gen = Generator.load()                       # bundled weights, auto device
    clip = gen.generate(wave, 16000, style="moderate", seed=3)
    clip.save("take.npz")                        # BEAT2 layout, 30 fps

CLI::

    python -m model.generate speech.wav -o take.npz --style moderate --seed 0 --steps 8

Long audio is generated in windows of ``window`` frames (4 s) that overlap
by ``overlap`` frames (0.8 s): every window after the first is conditioned
on the previous window's last ``overlap`` generated frames through the
known-frame mask, so windows continue each other without seams, and memory
is bounded by one window (plus the output arrays).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .features import SAMPLE_RATE, AudioError, audio_features, load_audio, num_frames
from .flow import blend_borders, gaussian_smooth, sample
from .motion import MotionClip
from .network import CoSpeechNet, NetConfig
from .representation import BODY_DIM, FRAME_DIM, Normaliser

#: (id, UI label, description).  Labels come from measurable properties of
#: the one training capture (BEAT2 2_scott_0_1_1): training windows were
#: split into terciles of mean upper-body joint speed; "left_mirror" is the
#: left-right mirrored capture (see train.py).
STYLES: list[tuple[str, str, str]] = [
    ("calm", "Calm (low gesture energy)",
     "Trained on the third of capture windows with the lowest upper-body speed."),
    ("moderate", "Moderate (medium gesture energy)",
     "Trained on the middle third of capture windows by upper-body speed."),
    ("energetic", "Energetic (high gesture energy)",
     "Trained on the third of capture windows with the highest upper-body speed."),
    ("left_mirror", "Mirrored (left-handed)",
     "Trained on the left-right mirrored capture (any energy): the dominant hand is swapped."),
]
STYLE_IDS = [s[0] for s in STYLES]
DEFAULT_STYLE = "moderate"
DEFAULT_STEPS = 8
#: Gaussian temporal smoothing (frames) of the sampled take, used when the
#: weights' json has no ``smooth_sigma`` / ``trans_sigma`` (see flow.gaussian_smooth).
DEFAULT_SMOOTH_SIGMA = 0.0
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = "cospeech.safetensors"
CONFIG_FILE = "cospeech.json"
FORMAT = "cospeech-weights-1"


class Cancelled(Exception):
    """Generation stopped because the progress callback returned False."""


class WeightsError(RuntimeError):
    """The weights files are missing, unreadable, corrupt or do not match the network."""


def select_device(requested: str = "auto") -> tuple[torch.device, str]:
    """Pick the torch device.

    Args:
        requested: "auto" (CUDA if available else CPU), "cpu" or "cuda".
    Returns:
        (device, warning): ``warning`` is "" unless CUDA was requested but is
        not available, in which case the CPU is returned with a message.
    Raises:
        ValueError: ``requested`` is not one of the three values.
    """
    req = (requested or "auto").lower()
    if req not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    has_cuda = torch.cuda.is_available()
    if req == "cpu":
        return torch.device("cpu"), ""
    if req == "cuda" and not has_cuda:
        return torch.device("cpu"), "CUDA was requested but no CUDA GPU is available; running on the CPU instead."
    return (torch.device("cuda") if has_cuda else torch.device("cpu")), ""


def save_weights(weights_dir: str | os.PathLike, net: CoSpeechNet, normaliser: Normaliser, meta: dict) -> None:
    """Write ``cospeech.safetensors`` (float16 tensors) + ``cospeech.json``."""
    from safetensors.torch import save_file
    d = Path(weights_dir)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(d / WEIGHTS_FILE), metadata={"format": FORMAT})
    os.chmod(d / WEIGHTS_FILE, 0o644)  # safetensors creates the file 0600
    cfg = {"format": FORMAT, "net": net.cfg.to_json(), "normaliser": normaliser.to_json(),
           "styles": [list(s) for s in STYLES], "default_style": DEFAULT_STYLE, **meta}
    (d / CONFIG_FILE).write_text(json.dumps(cfg, indent=1))


class Generator:
    """Loaded model + sampler.  Not thread-safe: use one instance per worker."""

    def __init__(self, net: CoSpeechNet, normaliser: Normaliser, device: torch.device, meta: dict,
                 device_warning: str = ""):
        self.net = net.to(device).eval()
        self.normaliser = normaliser
        self.device = device
        self.meta = meta
        self.device_warning = device_warning
        self.window = int(meta.get("window", 120))
        self.overlap = int(meta.get("overlap", 24))
        self.styles = [s[0] for s in meta.get("styles", STYLES)]
        self.smooth_sigma = float(meta.get("smooth_sigma", DEFAULT_SMOOTH_SIGMA))
        self.trans_sigma = float(meta.get("trans_sigma", self.smooth_sigma))

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, weights_dir: str | None = None, device: str = "auto") -> "Generator":
        """Load ``cospeech.safetensors`` + ``cospeech.json`` from ``weights_dir``.

        Args:
            weights_dir: folder with the two files; default the bundled
                ``model/weights/``.
            device: "auto" | "cpu" | "cuda" (see :func:`select_device`; the
                fallback warning is kept in ``self.device_warning``).
        Raises:
            WeightsError: a file is missing, not valid JSON / safetensors, of
                another format, or its tensors do not fit the network.
        """
        d = Path(weights_dir) if weights_dir else DEFAULT_WEIGHTS_DIR
        wpath, cpath = d / WEIGHTS_FILE, d / CONFIG_FILE
        for p in (wpath, cpath):
            if not p.is_file():
                raise WeightsError(f"CoSpeech weights missing: {p} not found (reinstall the extension "
                                   "or retrain with `python -m model.train`).")
        try:
            meta = json.loads(cpath.read_text())
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            cfg = NetConfig(**meta["net"])
            normaliser = Normaliser.from_json(meta["normaliser"])
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
        dev, warn = select_device(device)
        return cls(net, normaliser, dev, meta, warn)

    # --------------------------------------------------------------- generation
    def style_index(self, style: str) -> int:
        """Index of a style id; ValueError lists the valid ids."""
        if style not in self.styles:
            raise ValueError(f"unknown style {style!r}; choose one of {', '.join(self.styles)}")
        return self.styles.index(style)

    def generate(self, wave: np.ndarray, sr: int = SAMPLE_RATE, *, style: str = DEFAULT_STYLE,
                 guidance: float = 2.0, seed: int = 0, steps: int = DEFAULT_STEPS,
                 known: MotionClip | None = None, known_mask: np.ndarray | None = None,
                 progress: Callable[[float], bool] | None = None) -> MotionClip:
        """Speech -> SMPL-X + FLAME motion at 30 fps.

        Args:
            wave: (N,) float audio samples (or (N, C) / (C, N) multi-channel) at ``sr`` Hz.
            sr: sample rate in Hz (any; resampled to 16 kHz).
            style: one of :data:`STYLE_IDS`.
            guidance: classifier-free guidance scale (1 = off; 2 default).
            seed: noise seed; same seed, inputs and device -> identical output.
            steps: Euler steps 1..50 (quality vs speed).
            known: clip with frames to keep (30 fps; at least ``T`` frames are
                used, shorter clips are only used where ``known_mask`` allows).
            known_mask: (T,) bool at 30 fps, True = keep that frame of
                ``known`` exactly; required with ``known``.
            progress: called with the fraction done in [0, 1]; returning
                False cancels.
        Returns:
            MotionClip with ``T = ceil(N / sr * 30)`` frames at 30 fps.  Frames
            with ``known_mask`` True are copied bit-identically from ``known``.
        Raises:
            AudioError: empty / non-finite audio.
            ValueError: bad style, steps, guidance, or known/known_mask shapes.
            Cancelled: ``progress`` returned False.
        """
        if not 1 <= int(steps) <= 50:
            raise ValueError(f"steps must be in 1..50, got {steps}")
        if not np.isfinite(guidance) or guidance < 0:
            raise ValueError(f"guidance must be a finite number >= 0, got {guidance}")
        sidx = self.style_index(style)
        wave = np.asarray(wave, np.float32)
        feats = audio_features(wave, sr)
        T = feats.shape[0]
        known_x = np.zeros((T, FRAME_DIM), np.float32)
        mask = np.zeros(T, bool)
        if known is not None or known_mask is not None:
            if known is None or known_mask is None:
                raise ValueError("known and known_mask must be given together")
            km = np.asarray(known_mask, bool).reshape(-1)
            if km.shape[0] != T:
                raise ValueError(f"known_mask has {km.shape[0]} frames; the audio needs {T} (30 fps)")
            if km[:known.num_frames].sum() != km.sum():
                raise ValueError(f"known_mask marks frames beyond the known clip ({known.num_frames} frames)")
            n = min(T, known.num_frames)
            known_x[:n] = self.normaliser.encode(known.slice(0, n))
            mask = km
        out = np.zeros((T, FRAME_DIM), np.float32)
        W, O = self.window, self.overlap
        starts = [0] if T <= W else list(range(0, T - W, W - O)) + [T - W]
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(seed))
        total = len(starts) * int(steps)
        done = [0]

        def tick(_k):
            done[0] += 1
            if progress is not None and progress(done[0] / total) is False:
                raise Cancelled("generation cancelled")

        if progress is not None and progress(0.0) is False:
            raise Cancelled("generation cancelled")
        prev_end = 0
        style_t = torch.tensor([sidx], device=self.device)
        for s in starts:
            e = min(T, s + W)
            kx = known_x[s:e].copy()
            km = mask[s:e].copy()
            ov = max(0, prev_end - s)  # frames already generated by the previous window
            kx[:ov] = np.where(km[:ov, None], kx[:ov], out[s:s + ov])
            km[:ov] = True
            a = torch.from_numpy(feats[s:e][None]).to(self.device)
            x = sample(self.net, a, style_t, known=torch.from_numpy(kx[None]).to(self.device),
                       mask=torch.from_numpy(km[None]).to(self.device), steps=steps, guidance=guidance,
                       generator=gen, step_callback=tick)
            out[s:e] = x[0].cpu().numpy()
            prev_end = e
        # one temporal low-pass over the whole take (no window-edge effects), then the
        # user's known frames are restored and the borders blended (flow.blend_borders)
        if self.smooth_sigma > 0 or self.trans_sigma > 0:
            xt = torch.from_numpy(out)[None]
            sm = gaussian_smooth(xt, self.smooth_sigma)
            tr = slice(BODY_DIM - 3, BODY_DIM)
            sm[..., tr] = gaussian_smooth(xt[..., tr], self.trans_sigma)
            out = sm[0].numpy()
            if mask.any():
                kt, mt = torch.from_numpy(known_x), torch.from_numpy(mask)
                out = torch.where(mt[:, None], kt, blend_borders(torch.from_numpy(out), kt, mt)).numpy()
        clip = self.normaliser.decode(out)
        if known is not None and mask.any():  # exact copy of the user's frames (no 6D round-trip error)
            idx = np.flatnonzero(mask)
            clip.poses[idx] = known.poses[idx]
            clip.expressions[idx] = known.expressions[idx]
            clip.trans[idx] = known.trans[idx]
        return clip

    def generate_file(self, audio_path: str | os.PathLike, **kwargs) -> MotionClip:
        """:meth:`generate` on an audio file (any format librosa reads); AudioError if unreadable."""
        return self.generate(load_audio(audio_path), SAMPLE_RATE, **kwargs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.generate", description="Speech audio -> SMPL-X/FLAME motion npz (BEAT2 layout, 30 fps)")
    ap.add_argument("audio", help="audio file (wav/flac/ogg/mp3, any rate, mono or stereo)")
    ap.add_argument("-o", "--output", required=True, help="output .npz")
    ap.add_argument("--style", default=DEFAULT_STYLE, choices=STYLE_IDS)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--weights", default=None, help="weights folder (default: bundled model/weights)")
    args = ap.parse_args(argv)
    try:
        g = Generator.load(args.weights, args.device)
        if g.device_warning:
            print("warning:", g.device_warning, file=sys.stderr)
        from tqdm import tqdm
        bar = tqdm(total=100, unit="%", file=sys.stderr)

        def prog(f):
            bar.update(int(round(100 * f)) - bar.n)  # respects tqdm's refresh interval
            return True

        clip = g.generate_file(args.audio, style=args.style, guidance=args.guidance, seed=args.seed,
                               steps=args.steps, progress=prog)
        bar.close()
    except (AudioError, WeightsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clip.save(args.output)
    print(f"wrote {args.output}: {clip.num_frames} frames at {clip.fps:g} fps ({clip.duration:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
