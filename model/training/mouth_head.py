"""Train the ARKit mouth head and export it for ONNX Runtime.

    .venv/bin/python -m model.training.mouth_head [--out model/weights] [--epochs 20] [--seeds 3]
    .venv/bin/python -m model.training.mouth_head --calibrate-only   # amplitude only, graph kept

Both measure the head's leave-one-take-out amplitude (:func:`amplitude_calibration`,
~90 s) and store it in the file (``model/mouth_head.py``, "Amplitude").

The ARKit mouth (27 shapes, ``motion.ARKIT_MOUTH_NAMES``) the product bakes
comes from this head, not from the flow network's sampled ARKit columns: a
deterministic regressor trained with mean-squared error on FACEGOOD's hand
animation (``model/training/facegood.py``, take ``1114_3_16`` held out),
read by :mod:`model.mouth_head`.  Why: the flow network's ARKit modality,
sampled, scored mean r 0.19 on the held-out take against the ridge's 0.38
(``model/MODEL_CARD.md``); its ~20 k FACEGOOD frames are too few for the
sampled path to pin down 27 shapes.

Architecture (per ensemble member): LayerNorm -> Linear(102, 128) -> GELU ->
Dropout -> residual GELU(Conv1d k9) -> residual Conv1d k5 -> GELU -> Dropout
-> Linear(27), on the network input with phones
(``features.network_features(visemes=True, phones=True)``: 48 acoustic, 15
visemes, 39 ARPAbet one-hots), targets standardised per shape.  The output
is ``(1 - RIDGE_SHARE) * mean(members) + RIDGE_SHARE * ridge``, where the
ridge branch is ``lipsync_eval.ridge`` (alpha 10) on the first 63 columns
with ±4 frames, fitted on the same takes, stored as a frozen Conv1d
(replicate padding: the ridge's repeated edges).

Chosen on leave-one-take-out validation over the 6 training takes (never on
the held-out take), per-shape r (Gaussian sigma 0.75, clipped), mean / jawOpen:
ridge 0.365 / 0.820; 3 members, dropout 0.5, 14 epochs 0.369 / 0.811;
dropout 0.6, 20 epochs 0.375 / 0.814; that + ridge share 0.3 **0.386 / 0.822**
(higher than the ridge on 5 of the 6 takes).  Needs PyTorch; never imports bpy.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..features import SAMPLE_RATE, load_audio, network_features
from ..mouth_head import HEAD_FILE, HEAD_INPUT, HEAD_OUTPUT, RIDGE_COLUMNS, RIDGE_CONTEXT
from .lipsync_eval import SHARED, _with_context, ridge

RIDGE_SHARE = 0.3
#: the take's face smoothing (``cospeech.json`` face_sigma), applied before the amplitude is measured
FACE_SIGMA = 0.75
#: the largest amplitude gain (:func:`amplitude_calibration`)
MAX_GAIN = 3.0
#: shapes whose leave-one-take-out r is below this keep gain 1 (:func:`amplitude_calibration`)
MIN_R = 0.3
#: the shapes that open the mouth, the only ones amplified.  Chosen on the English
#: dev clips: amplifying mouthFunnel too (gain 2.4) turned the head's own rounding
#: contrast negative on all three clips with rounded vowels (0.02 / 0.08 / 0.72 ->
#: -0.34 / -0.16 / 0.17; the Mandarin speaker's funnel does not fall on English
#: rounded vowels), and the lip shapes (funnel, pucker, roll, press) are timed by
#: the phones (model/mouth.py)
AMPLIFIED = ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight")
WINDOW = 120
BATCH = 16


def _torch_modules():
    import torch
    from torch import nn

    class Member(nn.Module):
        def __init__(self, din: int, hid: int, p: float):
            super().__init__()
            self.norm, self.inp, self.drop = nn.LayerNorm(din), nn.Linear(din, hid), nn.Dropout(p)
            self.c1, self.c2 = nn.Conv1d(hid, hid, 9, padding=4), nn.Conv1d(hid, hid, 5, padding=2)
            self.out = nn.Linear(hid, 27)

        def forward(self, x):                       # (B, T, din) -> (B, T, 27) standardised
            h = self.drop(nn.functional.gelu(self.inp(self.norm(x)))).transpose(1, 2)
            h = h + nn.functional.gelu(self.c1(h))
            h = (h + self.c2(h)).transpose(1, 2)
            return self.out(self.drop(nn.functional.gelu(h)))

    class Head(nn.Module):
        """Members + ridge branch -> raw ARKit mouth (B, T, 27)."""

        def __init__(self, members, mu, sd, ridge_w, ridge_b, share: float):
            super().__init__()
            self.members = nn.ModuleList(members)
            self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
            self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
            self.ridge = nn.Conv1d(RIDGE_COLUMNS, 27, 2 * RIDGE_CONTEXT + 1, padding=RIDGE_CONTEXT,
                                   padding_mode="replicate")
            with torch.no_grad():
                self.ridge.weight.copy_(torch.tensor(ridge_w, dtype=torch.float32))
                self.ridge.bias.copy_(torch.tensor(ridge_b, dtype=torch.float32))
            self.share = float(share)

        def forward(self, feats):
            net = torch.stack([m(feats) for m in self.members]).mean(0) * self.sd + self.mu
            lin = self.ridge(feats[:, :, :RIDGE_COLUMNS].transpose(1, 2)).transpose(1, 2)
            return (1.0 - self.share) * net + self.share * lin

    return torch, Member, Head


def take_features(takes) -> list[np.ndarray]:
    """(T, 102) float32 head inputs of FACEGOOD ``takes``, padded/cut to their animation's length."""
    out = []
    for t in takes:
        f = network_features(load_audio(t.wav), SAMPLE_RATE, visemes=True, phones=True)[1]
        T = len(t.arkit_mouth)
        out.append(np.pad(f, ((0, max(0, T - len(f))), (0, 0)), mode="edge")[:T])
    return out


def ridge_as_conv(X: list[np.ndarray], Y: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``lipsync_eval.ridge`` on ±RIDGE_CONTEXT frames of the first 63 columns, as Conv1d (27, 63, 9) + bias (27,)."""
    k = 2 * RIDGE_CONTEXT + 1
    r = ridge(np.concatenate([_with_context(x[:, :RIDGE_COLUMNS], RIDGE_CONTEXT, None) for x in X]),
              np.concatenate(Y))
    # _with_context's column block i is frame t - CONTEXT + i, i.e. Conv1d tap i
    w = r.coef_.reshape(27, k, RIDGE_COLUMNS).transpose(0, 2, 1)
    return np.ascontiguousarray(w, np.float32), np.asarray(r.intercept_, np.float32)


def train_head(X: list[np.ndarray], Y: list[np.ndarray], seeds: int = 3, epochs: int = 20, lr: float = 5e-4,
               wd: float = 0.05, dropout: float = 0.6, hidden: int = 128, share: float = RIDGE_SHARE):
    """The :class:`Head` (module doc) trained on takes ``X`` (T, 102) / ``Y`` (T, 27); eval mode."""
    torch, Member, Head = _torch_modules()
    Ya = np.concatenate(Y)
    mu, sd = Ya.mean(0), Ya.std(0) + 1e-3
    members = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        m = Member(X[0].shape[1], hidden, dropout)
        opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=wd)
        batches = sum(len(x) for x in X) // WINDOW // BATCH
        for _epoch in range(epochs):
            m.train()
            for _b in range(batches):
                ks = rng.integers(len(X), size=BATCH)
                s0 = [rng.integers(0, len(X[k]) - WINDOW) for k in ks]
                x = torch.tensor(np.stack([X[k][s:s + WINDOW] for k, s in zip(ks, s0)]))
                y = torch.tensor(np.stack([(Y[k][s:s + WINDOW] - mu) / sd for k, s in zip(ks, s0)]))
                loss = ((m(x) - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        members.append(m)
    head = Head(members, mu, sd, *ridge_as_conv(X, Y), share)
    return head.eval()


def export(head, path: Path, meta: dict) -> Path:
    """Write ``head`` as ONNX (opset 17, dynamic time axis, input ``feats`` (1, T, 102), output ``arkit``)."""
    import onnx
    import torch
    x = torch.zeros(1, 200, head.members[0].norm.normalized_shape[0])
    torch.onnx.export(head, (x,), str(path), input_names=[HEAD_INPUT], output_names=[HEAD_OUTPUT],
                      dynamic_axes={HEAD_INPUT: {1: "frames"}, HEAD_OUTPUT: {1: "frames"}}, opset_version=17,
                      dynamo=False)
    model = onnx.load(str(path))
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=str(v))
    onnx.save(model, str(path))
    return path


def amplitude_calibration(X: list[np.ndarray], Y: list[np.ndarray], seeds: int = 3, epochs: int = 20,
                          sigma: float = FACE_SIGMA) -> dict:
    """Leave-one-take-out amplitude of the head (:mod:`model.mouth_head`, "Amplitude").

    For each take k a head is trained on the other takes (:func:`train_head`)
    and predicts take k; the predictions, Gaussian-smoothed by ``sigma``
    frames and unclipped (the runtime order), are pooled with the hand
    animation.  Per shape: ``center`` = mean of the predictions, ``gain`` =
    std(animation) / std(predictions), clipped to [1, :data:`MAX_GAIN`], for
    the mouth-opening shapes (:data:`AMPLIFIED`) that the held-out
    predictions follow (pooled Pearson r ≥ :data:`MIN_R`); the others, and
    shapes the animation does not move (std < 1e-3), keep gain 1 --
    amplifying a shape the head cannot predict would only add motion
    unrelated to the speech.

    Returns:
        ``{"center": [27], "gain": [27], "folds": [take names], "per_shape":
        {name: {"r", "std_truth", "std_pred", "gain"}}}`` (floats).
    """
    import torch
    from scipy.ndimage import gaussian_filter1d
    from ..motion import ARKIT_MOUTH_NAMES
    preds = []
    for k in range(len(X)):
        head = train_head([x for i, x in enumerate(X) if i != k], [y for i, y in enumerate(Y) if i != k],
                          seeds=seeds, epochs=epochs)
        with torch.no_grad():
            p = head(torch.tensor(X[k][None])).numpy()[0]
        preds.append(gaussian_filter1d(p, sigma, axis=0, mode="nearest") if sigma > 0 else p)
        print(f"  fold {k + 1}/{len(X)} done", flush=True)
    P, T = np.concatenate(preds), np.concatenate(Y)
    center, gain, per = P.mean(0), np.ones(P.shape[1]), {}
    for i, name in enumerate(ARKIT_MOUTH_NAMES):
        st, sp = float(T[:, i].std()), float(P[:, i].std())
        if st >= 1e-3 and sp > 1e-6:
            r = float(np.corrcoef(P[:, i], T[:, i])[0, 1])
            gain[i] = float(np.clip(st / sp, 1.0, MAX_GAIN)) if r >= MIN_R and name in AMPLIFIED else 1.0
            per[name] = {"r": r, "std_truth": st, "std_pred": sp, "gain": float(gain[i])}
    return {"center": [float(c) for c in center], "gain": [float(g) for g in gain], "per_shape": per}


def write_calibration(path: Path, cal: dict) -> None:
    """Store ``cal``'s center and gain in the ONNX file's metadata (``amplitude_center`` /
    ``amplitude_gain``, JSON lists), replacing earlier values; the graph is unchanged."""
    import onnx
    model = onnx.load(str(path))
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in ("amplitude_center", "amplitude_gain")]
    del model.metadata_props[:]
    for k, v in keep + [("amplitude_center", json.dumps(cal["center"])), ("amplitude_gain", json.dumps(cal["gain"]))]:
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.mouth_head", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "weights"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--calibrate-only", action="store_true",
                    help="only measure the leave-one-take-out amplitude and store it in the existing "
                         "mouth_head.onnx in --out (the shipped graph is not retrained)")
    args = ap.parse_args(argv)
    from .facegood import HELD_OUT, load_takes
    takes = load_takes(SHARED / "facegood")              # HELD_OUT excluded
    X, Y = take_features(takes), [t.arkit_mouth for t in takes]
    cal = amplitude_calibration(X, Y, seeds=args.seeds, epochs=args.epochs)
    print(json.dumps(cal["per_shape"], indent=1))
    if args.calibrate_only:
        write_calibration(Path(args.out) / HEAD_FILE, cal)
        print(f"wrote the amplitude calibration into {Path(args.out) / HEAD_FILE}")
        return 0
    head = train_head(X, Y, seeds=args.seeds, epochs=args.epochs)
    meta = {"format": "cospeech-mouth-head-1", "takes": json.dumps([t.name for t in takes]),
            "held_out": json.dumps(list(HELD_OUT)), "epochs": args.epochs, "members": args.seeds,
            "ridge_share": RIDGE_SHARE}
    path = export(head, Path(args.out) / HEAD_FILE, meta)
    write_calibration(path, cal)
    import torch
    from ..mouth_head import MouthHead
    with torch.no_grad():
        ref = head(torch.tensor(X[0][None])).numpy()[0]
    diff = float(np.abs(MouthHead(path).raw(X[0]) - ref).max())
    print(f"wrote {path} ({path.stat().st_size / 2 ** 20:.2f} MiB); max |torch - onnx| on {takes[0].name}: {diff:.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
