"""Train the CoSpeech flow-matching model on a BEAT2-layout folder.

Pure Python/PyTorch; never imports bpy.

    python -m model.training.train --data ../shared/data/beat2 --holdout 0.2 --minutes 40

Data: every ``smplxflame_30/<name>.npz`` with a matching ``wave16k/<name>.wav``
(the BEAT2 layout, Liu et al. "EMAGE", CVPR 2024).  ``--holdout f`` removes
the last fraction ``f`` of *every* clip (motion and audio) from training, so
with the single shipped capture the last 20 % of 2_scott_0_1_1 stays unseen
for ``evaluate.py``.

Augmentation (physically valid only):

* left-right mirror (:func:`representation.mirror_clip`: joint swaps,
  axis-angle (x,y,z)->(x,-y,-z), trans x -> -x);
* time stretch by factors ``--stretch`` (default 0.9, 1.0, 1.1): motion
  resampled with slerp (``MotionClip.resample``), audio with the phase
  vocoder ``librosa.effects.time_stretch`` (pitch kept), so they stay in sync.

Styles: per training window, the mean upper-body joint speed (joints of
``skeleton.UPPER_BODY``, forward kinematics) is compared with the terciles
of that quantity over all un-augmented windows -> calm / moderate /
energetic; every mirrored window is labelled ``left_mirror``.

Each step draws ``--batch`` random windows of ``--window`` frames and a random
conditioning mask (none 40 %, known prefix 30 %, known both sides 20 %,
sparse locked frames 10 %).  Everything random is seeded from
``(--seed, step)``, so a run resumed from ``--ckpt`` continues identically.
Output: ``cospeech.safetensors`` + ``cospeech.json`` (EMA weights, float16)
and ``loss_curve.png`` in ``--out``.

Data-parallel (one or many machines, ``torchrun``)::

    torchrun --nproc_per_node 2 -m model.training.train --batch 64 --accum 2 [--bf16] ...

Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in PyTorch's
``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA).  Every rank draws
the same global batch of ``--batch`` windows (and its flow-matching noise)
from ``(--seed, step)`` and trains on its slice, split again into
``--accum`` micro-batches (gradient accumulation, ``no_sync`` between
them); the loss of each part is normalised by the *global* batch's
unknown-frame count (``flow.loss_denominators``) and scaled by the world
size, so the averaged gradient equals one process's gradient on the whole
batch: N processes reproduce the loss curve of one process with the same
``--batch`` (to float tolerance; test).  Rank 0 writes checkpoints and
weights; ``--resume`` works the same.  ``--bf16``: bfloat16 autocast of the
forward pass (CUDA; allowed on CPU for testing).

Large trees (``--stream``, :mod:`model.training.dataset`): the tree is indexed once
(cached), whole speakers are held out (``--holdout-speakers``), and windows
are streamed from a small cache of decoded clips (mirror augmentation on
the fly; no time stretch); ``--speaker-condition`` adds a speaker-identity
embedding (``NetConfig.n_speakers``), dropped together with the style so
the "any speaker" id is trained too — generation uses it (the weights'
``cospeech.json`` lists the speakers under ``training.speakers``; choosing
one at generation time is not exposed yet).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..features import FEATURE_DIM
from ..flow import balanced_columns, draw_noise, flow_loss, loss_denominators
from ..generate import DEFAULT_WEIGHTS_DIR, STYLES, save_weights
from ..network import CoSpeechNet, NetConfig, count_parameters
from ..phones import PHONE_DIM, VISEME_DIM
from .windows import STYLE_IDS, Dataset  # noqa: F401  (re-exported: the training API)

def plot_loss(losses: list[float], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, alpha=0.3, lw=0.7, label="batch")
    if len(losses) >= 20:
        k = 20
        sm = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k - 1, len(losses)), sm, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _distributed(device: "torch.device") -> tuple[int, int]:
    """(rank, world size); joins the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def train(args) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    rank, world = _distributed(device)
    if args.batch % (world * args.accum):
        raise ValueError(f"--batch {args.batch} must be a multiple of processes x --accum = {world * args.accum}")
    log = (lambda *a: print(*a, flush=True)) if rank == 0 else (lambda *a: None)
    if args.phones and not args.visemes:
        raise ValueError("--phones needs --visemes")
    if args.facegood and args.stream:
        raise ValueError("--facegood is for the one-machine dataset, not --stream")
    held_out = []
    if args.stream:
        from .dataset import StreamingDataset, build_index, split_by_speaker
        entries = build_index(args.data, args.index_cache, log)
        train_e, held_e = split_by_speaker(entries, args.holdout_speakers, args.seed)
        held_out = sorted({e.speaker for e in held_e})
        log(f"held-out speakers: {held_out or 'none'}")
        ds = StreamingDataset(args.data, train_e, args.window, cache_files=args.cache_files, seed=args.seed,
                              speakers=args.speaker_condition, log=log, visemes=args.visemes,
                              viseme_dropout=args.viseme_dropout, phones=args.phones)
    else:
        ds = Dataset(args.data, args.holdout, args.stretch, args.window, log, visemes=args.visemes,
                     viseme_dropout=args.viseme_dropout, facegood=args.facegood, facegood_share=args.facegood_share,
                     phones=args.phones)
    if args.speaker_condition and not args.stream:
        raise ValueError("--speaker-condition needs --stream (speakers come from the tree's index)")
    speakers = list(ds.speakers) if args.speaker_condition else []
    cfg = NetConfig(d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
                    n_styles=len(STYLES), face_audio=not args.no_face_audio, dropout=args.dropout,
                    n_speakers=len(speakers), visemes=bool(args.visemes), mouth_phonetic=bool(args.mouth_phonetic),
                    phones=bool(args.phones), arkit_audio=bool(args.arkit_audio),
                    audio_dim=FEATURE_DIM + (VISEME_DIM if args.visemes else 0) + (PHONE_DIM if args.phones else 0))
    torch.manual_seed(args.seed)
    net = CoSpeechNet(cfg)
    ema = CoSpeechNet(cfg)
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01)
    step, losses, elapsed_before = 0, [], 0.0
    ckpt = Path(args.ckpt)
    if args.resume and ckpt.is_file():
        st = torch.load(ckpt, map_location="cpu", weights_only=True)
        net.load_state_dict(st["net"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        step, losses, elapsed_before = int(st["step"]), [float(v) for v in st["losses"]], float(st["elapsed"])
        log(f"resumed from {ckpt} at step {step}")
    net.to(device)
    ema.to(device)
    model = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    log(f"parameters: {count_parameters(net)}; steps {args.steps}, batch {args.batch}, window {args.window}")
    if args.export_only:
        if step == 0:
            raise FileNotFoundError(f"--export-only needs a checkpoint at {ckpt} and --resume")
        args.steps = step  # skip the loop; write the EMA weights of the checkpoint

    def lr_at(s):
        warm = 100
        if s < warm:
            return args.lr * (s + 1) / warm
        return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, args.steps - warm))))

    def save_ckpt():
        if rank != 0:
            return
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step,
                    "losses": torch.tensor(losses, dtype=torch.float64), "elapsed": elapsed_before + time.time() - t_start}, ckpt)

    from tqdm import tqdm
    t_start = time.time()
    deadline = t_start + args.minutes * 60 if args.minutes > 0 else float("inf")
    bar = tqdm(total=args.steps, initial=step, desc="train", mininterval=5, file=sys.stdout, disable=rank != 0)
    lo, hi = rank * args.batch // world, (rank + 1) * args.batch // world
    micro = (hi - lo) // args.accum
    net.train()
    stopped_early = False
    while step < args.steps:
        if time.time() > deadline:
            stopped_early = True
            log(f"time budget of {args.minutes} min reached at step {step}")
            break
        rng = np.random.default_rng([args.seed, step])
        torch.manual_seed(args.seed * 1_000_003 + step)
        parts = ds.batch(rng, args.batch)                   # the global batch, the same on every rank
        x, m = parts[0], parts[3]
        spk_all = parts[4] if len(parts) > 4 else None
        cols = parts[5] if len(parts) > 5 else None
        noise = draw_noise(x.shape, torch.Generator().manual_seed(args.seed * 1_000_003 + step))
        den = loss_denominators(m, x.shape[-1], cols)
        if args.balance_windows and cols is not None:
            cols = balanced_columns(cols)       # numerator weights only: the denominators stay those of ``cols``
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        step_loss = torch.zeros((), dtype=torch.float64)
        for k in range(args.accum):
            sl = slice(lo + k * micro, lo + (k + 1) * micro)
            part = [v[sl].to(device) for v in parts[:4]]
            spk = spk_all[sl].to(device) if spk_all is not None else None
            col = cols[sl].to(device) if cols is not None else None
            sync = contextlib.nullcontext() if world == 1 or k == args.accum - 1 else model.no_sync()
            with sync, torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = flow_loss(model, *part, noise=tuple(v[sl].to(device) for v in noise),
                                 denominators=tuple(d.to(device) for d in den), speaker=spk, columns=col)
            (loss * world).backward()          # DDP averages over ranks: x world gives the global batch's gradient
            step_loss += loss.detach().double().cpu()
        if world > 1:
            import torch.distributed as dist
            dist.all_reduce(step_loss)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - d)
        losses.append(float(step_loss))
        step += 1
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if step % args.ckpt_every == 0:
            save_ckpt()
    bar.close()
    if not args.export_only:
        save_ckpt()
    if rank != 0:
        return {"steps": step, "rank": rank}
    net.cpu()
    ema.cpu()
    out = Path(args.out)
    info = {"steps": step, "planned_steps": args.steps, "stopped_by_time_budget": stopped_early,
            "final_loss_mean_last100": float(np.mean(losses[-100:])) if losses else None,
            "train_seconds": elapsed_before + time.time() - t_start, "batch": args.batch,
            "lr": args.lr, "seed": args.seed, "holdout": args.holdout, "stretch": args.stretch,
            "sources": ds.sources, "energy_terciles_m_per_s": ds.thresholds.tolist(),
            "parameters": count_parameters(net), "threads": args.threads, "processes": world,
            "accum": args.accum, "bf16": bool(args.bf16), "device": device.type,
            "stream": bool(args.stream), "held_out_speakers": held_out, "speakers": speakers,
            "viseme_dropout": args.viseme_dropout if args.visemes else None,
            "facegood_share": args.facegood_share if args.facegood else None,
            "balance_windows": bool(args.balance_windows),
            "facegood_jaw_calibration": getattr(ds, "calibration", None) and ds.calibration.to_json()}
    meta = {"window": args.window, "overlap": args.overlap, "training": info,
            "data_license": "BEAT2 (CC BY-NC 4.0); these weights inherit CC BY-NC 4.0"}
    save_weights(out, ema, ds.norm, meta)
    plot_loss(losses, out / "loss_curve.png")
    log(json.dumps(info, indent=1))
    log(f"saved {out / 'cospeech.safetensors'}")
    if args.evaluate:      # the project's evaluator (model/training/evaluate.py) on the new weights
        from . import evaluate
        log(f"evaluating {out} -> {args.evaluate}")
        evaluate.main(["--weights", str(out), "--out", str(args.evaluate), "--threads", str(args.threads)])
    return info


def build_parser() -> argparse.ArgumentParser:
    default_data = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "beat2"
    ap = argparse.ArgumentParser(prog="python -m model.training.train", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(default_data), help="BEAT2-layout folder")
    ap.add_argument("--out", default=str(DEFAULT_WEIGHTS_DIR), help="where to write the weights")
    ap.add_argument("--ckpt", default="out/train/ckpt.pt", help="resumable checkpoint (torch.save)")
    ap.add_argument("--resume", action="store_true", help="continue from --ckpt if it exists")
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--export-only", action="store_true",
                    help="with --resume: only write the checkpoint's EMA weights to --out")
    ap.add_argument("--holdout", type=float, default=0.2, help="last fraction of each clip kept out")
    ap.add_argument("--stretch", type=float, nargs="+", default=[0.9, 1.0, 1.1])
    ap.add_argument("--window", type=int, default=120, help="frames per training window")
    ap.add_argument("--overlap", type=int, default=24, help="generation window overlap (frames), stored in json")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--minutes", type=float, default=0, help="wall-time budget (0 = none)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    ap.add_argument("--accum", type=int, default=1, help="micro-batches per step and process (gradient accumulation)")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast of the forward pass (for CUDA)")
    ap.add_argument("--dropout", type=float, default=0.1, help="network dropout (0 for exact DDP comparisons)")
    ap.add_argument("--stream", action="store_true",
                    help="large trees: index once (cached), hold out whole speakers, stream windows (model/training/dataset.py)")
    ap.add_argument("--holdout-speakers", type=int, default=0, help="--stream: number of speakers held out")
    ap.add_argument("--index-cache", default=None, help="--stream: index file (default DATA/.cospeech_index.json)")
    ap.add_argument("--cache-files", type=int, default=8, help="--stream: decoded clips kept in memory")
    ap.add_argument("--evaluate", default=None, metavar="DIR",
                    help="after training, run model.training.evaluate on the new weights into DIR (rank 0)")
    ap.add_argument("--speaker-condition", action="store_true",
                    help="--stream: condition the network on the speaker id (dropped with the style)")
    ap.add_argument("--visemes", action="store_true",
                    help="add PocketSphinx viseme one-hots to the audio input (NetConfig.visemes)")
    ap.add_argument("--viseme-dropout", type=float, default=0.2,
                    help="--visemes: fraction of training windows whose viseme columns are zeroed")
    ap.add_argument("--phones", action="store_true",
                    help="with --visemes: also the 39 ARPAbet phone one-hots (NetConfig.phones)")
    ap.add_argument("--mouth-phonetic", action="store_true",
                    help="with --visemes: the mouth term reads only visemes + loudness (NetConfig.mouth_phonetic)")
    ap.add_argument("--arkit-audio", action="store_true",
                    help="the ARKit mouth also reads the shared audio encoding (NetConfig.arkit_audio)")
    ap.add_argument("--facegood", default=None, metavar="DIR",
                    help="FACEGOOD takes (model/training/facegood.py) as extra jaw-only supervision (take 1114_3_16 held out)")
    ap.add_argument("--balance-windows", action="store_true",
                    help="every window weighs the same in the loss, whatever number of columns it supervises")
    ap.add_argument("--facegood-share", type=float, default=0.25, help="--facegood: fraction of windows from it")
    ap.add_argument("--no-face-audio", action="store_true",
                    help="train without the mouth pathway (NetConfig.face_audio; the first model's design)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0.0 <= args.holdout < 1.0:
        print("error: --holdout must be in [0, 1)", file=sys.stderr)
        return 2
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
