"""Train the ARKit mouth head and export it for ONNX Runtime.

    .venv/bin/python -m model.training.mouth_head [--out model/weights] [--epochs 20] [--seeds 3]

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.mouth_head", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "weights"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    from .facegood import HELD_OUT, load_takes
    takes = load_takes(SHARED / "facegood")              # HELD_OUT excluded
    X, Y = take_features(takes), [t.arkit_mouth for t in takes]
    head = train_head(X, Y, seeds=args.seeds, epochs=args.epochs)
    meta = {"format": "cospeech-mouth-head-1", "takes": json.dumps([t.name for t in takes]),
            "held_out": json.dumps(list(HELD_OUT)), "epochs": args.epochs, "members": args.seeds,
            "ridge_share": RIDGE_SHARE}
    path = export(head, Path(args.out) / HEAD_FILE, meta)
    import torch
    from ..mouth_head import MouthHead
    with torch.no_grad():
        ref = head(torch.tensor(X[0][None])).numpy()[0]
    diff = float(np.abs(MouthHead(path).raw(X[0]) - ref).max())
    print(f"wrote {path} ({path.stat().st_size / 2 ** 20:.2f} MiB); max |torch - onnx| on {takes[0].name}: {diff:.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
