"""Public generation API (what the Blender add-on and the CLI call).

Pure Python + numpy; never imports bpy.  PyTorch is optional: the network is
evaluated by a backend (``backends.py``): ``"torch"`` (the safetensors
weights in PyTorch, CPU or CUDA) or ``"onnx"`` (``cospeech.onnx`` in ONNX
Runtime, which is what the packaged Blender extension bundles).  The sampler
(``flow.sample``) is the same numpy code for both; with the same seed the two
backends give the same motion to float32 rounding (measured max pose
difference in ``MODEL_CARD.md``, "Backends").

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
from typing import TYPE_CHECKING, Callable

import numpy as np

from .backends import (BACKENDS, BackendError, Device, OnnxDenoiser, TorchDenoiser,  # noqa: F401
                       device_summary, resolve_backend, select_device)
from .features import FEATURE_DIM, FEATURE_NAMES, SAMPLE_RATE, AudioError, closure_cue, load_audio, network_features
from .mouth import close_jaw, phone_closures, phone_shapes
from .mouth_head import MouthHead, load_head
from .phones import VISEME_DIM
from .silence import rest_mouth, silence_weight
from .flow import Denoiser, blend_borders, sample, smooth_take
from .motion import MotionClip
from .representation import FRAME_DIM, Normaliser
from .weights_io import (CONFIG_FILE, DEFAULT_WEIGHTS_DIR, FORMAT, ONNX_FILE, WEIGHTS_FILE,  # noqa: F401
                         WeightsError, check_files, load_config, load_torch_net, safetensors_sha256)

if TYPE_CHECKING:
    import torch

    from .network import CoSpeechNet

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


class Cancelled(Exception):
    """Generation stopped because the progress callback returned False."""


def export_bundle_onnx(weights_dir: str | os.PathLike | None = None) -> Path:
    """(Re)write ``cospeech.onnx`` from ``cospeech.safetensors`` + ``cospeech.json`` in ``weights_dir``.

    Needs torch.  The ONNX metadata records ``safetensors_sha256`` (hash of
    the source weights) and the weights format.  Returns the .onnx path.
    Raises: WeightsError if the torch weights cannot be loaded.
    """
    from .backends import export_onnx
    d = Path(weights_dir) if weights_dir else DEFAULT_WEIGHTS_DIR
    net, _norm, _meta = load_torch_net(d)
    return export_onnx(net, d / ONNX_FILE, metadata={"format": FORMAT,
                                                     "safetensors_sha256": safetensors_sha256(d / WEIGHTS_FILE)})


def save_weights(weights_dir: str | os.PathLike, net: "CoSpeechNet", normaliser: Normaliser, meta: dict,
                 onnx: bool = True) -> None:
    """Write ``cospeech.safetensors`` (float16 tensors) + ``cospeech.json``, and with
    ``onnx`` also ``cospeech.onnx`` (float32, from the float16 weights, see
    :func:`export_bundle_onnx`) so the folder works with both backends."""
    import torch
    from safetensors.torch import save_file
    d = Path(weights_dir)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(d / WEIGHTS_FILE), metadata={"format": FORMAT})
    os.chmod(d / WEIGHTS_FILE, 0o644)  # safetensors creates the file 0600
    cfg = {"format": FORMAT, "net": net.cfg.to_json(), "normaliser": normaliser.to_json(),
           "styles": [list(s) for s in STYLES], "default_style": DEFAULT_STYLE, **meta}
    (d / CONFIG_FILE).write_text(json.dumps(cfg, indent=1))
    if onnx:
        export_bundle_onnx(d)


class Generator:
    """Loaded model + sampler.  Not thread-safe: use one instance per worker.

    Attributes:
        backend: "torch" or "onnx".  device: ``torch.device`` (torch) or
        :class:`Device` (onnx).  device_warning: "" or the CUDA-fallback
        message.  denoiser: the ``flow.Denoiser``.  net: the ``CoSpeechNet``
        (torch backend) or None.  normaliser, meta, window, overlap, styles,
        smooth_sigma, trans_sigma, face_sigma: from ``cospeech.json`` (face_sigma
            defaults to smooth_sigma for weights that predate it).  visemes:
            the network reads PocketSphinx viseme one-hots (``NetConfig.visemes``).
            phones: ... and ARPAbet phone one-hots (``NetConfig.phones``).
            mouth_head: the learned ARKit mouth (:class:`model.mouth_head.MouthHead`,
            ``mouth_head.onnx`` beside the weights) or None (a folder without
            it: the network's sampled ARKit columns are the mouth).
    """

    def __init__(self, denoiser: "Denoiser | CoSpeechNet", normaliser: Normaliser, device, meta: dict,
                 device_warning: str = "", backend: str | None = None):
        self.net = None
        if hasattr(denoiser, "state_dict"):  # a torch CoSpeechNet: wrap it
            denoiser = TorchDenoiser(denoiser, device)
            self.net = denoiser.net
        elif isinstance(denoiser, TorchDenoiser):
            self.net = denoiser.net
        self.denoiser = denoiser
        self.backend = backend or getattr(denoiser, "backend", "torch")
        self.normaliser = normaliser
        self.device = device
        self.meta = meta
        self.device_warning = device_warning
        self.window = int(meta.get("window", 120))
        self.overlap = int(meta.get("overlap", 24))
        self.styles = [s[0] for s in meta.get("styles", STYLES)]
        self.smooth_sigma = float(meta.get("smooth_sigma", DEFAULT_SMOOTH_SIGMA))
        self.trans_sigma = float(meta.get("trans_sigma", self.smooth_sigma))
        self.face_sigma = float(meta.get("face_sigma", self.smooth_sigma))
        #: phone-timed lip shapes on the ARKit mouth and the SMPL-X jaw (model/mouth.py); False: the learned mouth alone
        self.phone_shapes = True
        self.visemes = bool(meta.get("net", {}).get("visemes", False))
        self.phones = bool(meta.get("net", {}).get("phones", False))
        self.mouth_head: MouthHead | None = None
        self.phones_note, self.closure_cue = "", None    # of the last generate() (see there)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, weights_dir: str | None = None, device: str = "auto", backend: str = "auto",
             threads: int | None = None) -> "Generator":
        """Load the weights in ``weights_dir`` for a backend.

        Files: ``cospeech.json`` (config, normaliser statistics, styles,
        smoothing; both backends) + ``cospeech.safetensors`` (torch) or
        ``cospeech.onnx`` (onnx).  When both weight files are present, the
        ONNX model's recorded ``safetensors_sha256`` must match the
        safetensors file beside it.

        Args:
            weights_dir: folder with the files; default the bundled
                ``model/weights/``.
            device: "auto" | "cpu" | "cuda" (see :func:`select_device`; the
                fallback warning is kept in ``self.device_warning``).
            backend: "auto" (torch if importable, else onnx) | "torch" | "onnx".
            threads: ONNX Runtime intra-op threads (None = its default, all
                cores); the torch backend uses ``torch.set_num_threads``.
        Raises:
            WeightsError: a needed file is missing, not valid JSON /
                safetensors / ONNX, of another format, or does not fit the network.
            BackendError: the backend's runtime (torch / onnxruntime) is not installed.
            ValueError: bad ``device`` or ``backend``.
        """
        d = Path(weights_dir) if weights_dir else DEFAULT_WEIGHTS_DIR
        be = resolve_backend(backend)
        dev, warn = select_device(device, be)
        if be == "torch":
            net, normaliser, meta = load_torch_net(d)
            return cls(TorchDenoiser(net, dev), normaliser, dev, meta, warn, "torch")._with_head(d)
        opath, cpath = d / ONNX_FILE, d / CONFIG_FILE
        check_files(opath, cpath)
        meta, normaliser = load_config(cpath)
        try:
            den = OnnxDenoiser(opath, device=dev.type, threads=threads)
        except BackendError:
            raise
        except Exception as exc:
            raise WeightsError(f"CoSpeech ONNX model {opath} is corrupt or unreadable: {exc}") from exc
        if den.metadata.get("format", FORMAT) != FORMAT:
            raise WeightsError(f"CoSpeech ONNX model {opath} has format {den.metadata.get('format')!r}, "
                               f"expected {FORMAT!r}")
        recorded = den.metadata.get("safetensors_sha256", "")
        wpath = d / WEIGHTS_FILE
        if recorded and wpath.is_file() and safetensors_sha256(wpath) != recorded:
            raise WeightsError(
                f"CoSpeech weights in {d} disagree: {ONNX_FILE} was exported from other weights than "
                f"the {WEIGHTS_FILE} beside it (SHA-256 differs; corrupt or replaced). Re-export with "
                "`python -m model.training.export_onnx --weights DIR`, or remove the stale file.")
        a_dim = int(meta["net"]["audio_dim"])
        shapes = {i.name: i.shape for i in den.session.get_inputs()}
        if shapes["x"][-1] != FRAME_DIM or shapes["audio"][-1] != a_dim:
            raise WeightsError(f"CoSpeech ONNX model {opath} does not match {cpath} "
                               f"(inputs {shapes['x']}, {shapes['audio']})")
        if dev.type == "cuda" and den.device != "cuda":  # CUDA EP listed but failed to initialise
            dev = Device("cpu")
            warn = warn or ("onnxruntime-gpu could not initialise CUDA (drivers / CUDA libraries?); "
                            "running on the CPU instead.")
        return cls(den, normaliser, dev, meta, warn, "onnx")._with_head(d)

    def _with_head(self, d: Path) -> "Generator":
        self.mouth_head = load_head(d) if self.visemes else None    # WeightsError if unreadable
        return self

    # --------------------------------------------------------------- generation
    def style_index(self, style: str) -> int:
        """Index of a style id; ValueError lists the valid ids."""
        if style not in self.styles:
            raise ValueError(f"unknown style {style!r}; choose one of {', '.join(self.styles)}")
        return self.styles.index(style)

    def generate(self, wave: np.ndarray, sr: int = SAMPLE_RATE, *, style: str = DEFAULT_STYLE,
                 guidance: float = 2.0, seed: int = 0, steps: int = DEFAULT_STEPS,
                 known: MotionClip | None = None, known_mask: np.ndarray | None = None,
                 progress: Callable[[float], bool] | None = None, text: str | None = None) -> MotionClip:
        """Speech -> SMPL-X + FLAME motion at 30 fps.

        Args:
            wave: (N,) float audio samples (or (N, C) / (C, N) multi-channel) at ``sr`` Hz.
            sr: sample rate in Hz (any; resampled to 16 kHz).
            style: one of :data:`STYLE_IDS`.
            guidance: classifier-free guidance scale (1 = off; 2 default).
            seed: noise seed (``np.random.default_rng(seed)``, the same noise
                for every backend); same seed, inputs, backend and device ->
                identical output; across backends equal to float32 rounding.
            steps: Euler steps 1..50 (quality vs speed).
            known: clip with frames to keep (30 fps; at least ``T`` frames are
                used, shorter clips are only used where ``known_mask`` allows).
            known_mask: (T,) bool at 30 fps, True = keep that frame of
                ``known`` exactly; required with ``known``.
            progress: called with the fraction done in [0, 1]; returning
                False cancels.
            text: the line's dialogue text (English): phones aligned to it
                instead of decoded (:mod:`model.align`; falls back to decoding,
                never an error); ``self.phones_note`` says which was used.
        Returns:
            MotionClip with ``T = ceil(N / sr * 30)`` frames at 30 fps.  Frames
            with ``known_mask`` True are copied bit-identically from ``known``.
            Where the audio is silent the mouth rests (``silence.rest_mouth``).
            ``self.closure_cue`` is then the take's Lip Closure cue ((T,) float32
            in [0, 1], 30 fps, for :func:`model.adjust.adjust`): the phones'
            eased P B M (``mouth.phone_closures``), or the energy cue
            (``features.closure_cue``) where no P B M was decoded.
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
        report: dict = {}
        head = self.mouth_head is not None
        raw, feats = network_features(wave, sr, visemes=self.visemes, phones=self.phones or head, text=text,
                                      report=report)
        self.phones_note = report.get("phones", "")
        head_feats, feats = feats, feats[:, :int(self.meta.get("net", {}).get("audio_dim", feats.shape[1]))]
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
        rng = np.random.default_rng(int(seed))
        total = len(starts) * int(steps)
        done = [0]

        def tick(_k):
            done[0] += 1
            if progress is not None and progress(done[0] / total) is False:
                raise Cancelled("generation cancelled")

        if progress is not None and progress(0.0) is False:
            raise Cancelled("generation cancelled")
        prev_end = 0
        style_a = np.array([sidx], np.int64)
        for s in starts:
            e = min(T, s + W)
            kx = known_x[s:e].copy()
            km = mask[s:e].copy()
            ov = max(0, prev_end - s)  # frames already generated by the previous window
            kx[:ov] = np.where(km[:ov, None], kx[:ov], out[s:s + ov])
            km[:ov] = True
            x = sample(self.denoiser, feats[s:e][None], style_a, known=kx[None], mask=km[None], steps=steps,
                       guidance=guidance, rng=rng, step_callback=tick)
            out[s:e] = x[0]
            prev_end = e
        # one temporal low-pass over the whole take (no window-edge effects), then the
        # user's known frames are restored and the borders blended (flow.blend_borders)
        if self.smooth_sigma > 0 or self.trans_sigma > 0 or self.face_sigma > 0:
            out = smooth_take(out, self.smooth_sigma, self.trans_sigma, self.face_sigma)
            if mask.any():
                out = np.where(mask[:, None], known_x, blend_borders(out, known_x, mask))
        clip = self.normaliser.decode(out)
        if head:                                      # the learned ARKit mouth replaces the sampled columns
            clip.arkit_mouth = self.mouth_head(head_feats, self.face_sigma)
        c, f = phone_closures(feats[:, FEATURE_DIM:FEATURE_DIM + VISEME_DIM]) if self.visemes else (None, None)
        if c is not None and self.phone_shapes:       # rounded vowels round, P B M close, F V raise the lower lip (model/mouth.py)
            clip.arkit_mouth = phone_shapes(clip.arkit_mouth, feats[:, FEATURE_DIM:FEATURE_DIM + VISEME_DIM])
            clip.poses = close_jaw(clip.poses, c, f)
        self.closure_cue = c if c is not None and c.any() else closure_cue(wave, sr, T)
        rest_mouth(clip, silence_weight(raw[:, FEATURE_NAMES.index("rms_db")]), keep=mask)
        if known is not None and mask.any():  # exact copy of the user's frames (no 6D round-trip error)
            idx = np.flatnonzero(mask)
            clip.poses[idx] = known.poses[idx]
            clip.expressions[idx] = known.expressions[idx]
            clip.trans[idx] = known.trans[idx]
            if known.arkit_mouth is not None:
                clip.arkit_mouth[idx] = known.arkit_mouth[idx]
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
    ap.add_argument("--backend", default="auto", choices=list(BACKENDS),
                    help="auto = torch if installed, else ONNX Runtime")
    ap.add_argument("--weights", default=None, help="weights folder (default: bundled model/weights)")
    args = ap.parse_args(argv)
    try:
        g = Generator.load(args.weights, args.device, args.backend)
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
    except (AudioError, WeightsError, BackendError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clip.save(args.output)
    print(f"wrote {args.output}: {clip.num_frames} frames at {clip.fps:g} fps ({clip.duration:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
