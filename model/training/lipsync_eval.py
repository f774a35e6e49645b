"""Lip-sync evaluation: phoneme contrast and jaw correlation, model vs a
ridge-regression baseline vs the capture.

    .venv/bin/python -m model.training.lipsync_eval --out out/eval --seeds 0 1 2

* Held-out segment (the last ``holdout`` of BEAT2 2_scott_0_1_1): Pearson r
  of the generated jaw opening with the capture's, and the phoneme contrast
  (:func:`model.phones.phoneme_contrast`) with the TextGrid phones and with
  the segment's own PocketSphinx ``allphone`` phones (the capture scores
  1.49 with the former, 1.86 with the latter; the issue's 1.84 is the latter).
* Every English ``../shared/data/dev_audio`` clip: the contrast with
  PocketSphinx ``allphone`` phones (no motion ground truth there).
* **Baseline rows**: ridge regression (scikit-learn ``Ridge``, alpha 10, not
  tuned) to the jaw opening, fitted on the training part of the capture
  only, from (a) the project's 40 per-clip-normalised log-mel columns with
  ±2 frames of context, and (b) the network's own input -- the 48 acoustic
  columns and the 15 PocketSphinx viseme one-hots
  (``features.network_features(visemes=True)``) with ±4 frames.  A model that
  does not beat them is not done.  With the FACEGOOD takes present, (c) the
  same features fitted on the capture's training part plus the FACEGOOD
  training takes (jaw calibrated as in :mod:`model.training.facegood`) -- the
  baseline of a network trained with ``--facegood``.
* FACEGOOD held-out take ``1114_3_16`` (when present): Pearson r of the
  generated jaw opening with its ``mouth_stretch_c`` (jawOpen) track.
* One plot per clip: jaw opening over time, bilabial (P B M) and open-vowel
  centres marked.
* ``--ridge-cv``: the ceiling of a linear map from each input, by blocked
  cross-validation inside the capture's training part (:func:`ridge_cv`).

Never imports bpy.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from ..features import (FEATURE_DIM, FEATURE_NAMES, LOUDNESS_NAMES, SAMPLE_RATE, audio_features,
                       load_audio, network_features)
from ..motion import MotionClip
from .plots import plot_phones
from ..phones import (BILABIALS, OPEN_VOWELS, PHONE_DIM, VISEME_DIM, Phone, PhoneError, allphone, centre_frames,
                     jaw_opening, phoneme_contrast, textgrid_phones)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
FPS = 30.0
N_MEL = 40
CONTEXT = 2
RIDGE_ALPHA = 10.0
#: dev_audio clips that are not English (allphone uses the en-us model): none today.
NON_ENGLISH: frozenset = frozenset()


#: Ridge baselines: name -> (description, context frames each side).
BASELINES = {"ridge_mel": ("40 log-mel, ±2 frames", 2),
             "ridge_input": ("network input: 48 acoustic + 15 visemes, ±4 frames", 4)}


def _with_context(f: np.ndarray, context: int, num_frames: int | None) -> np.ndarray:
    if num_frames is not None:
        f = np.pad(f, ((0, max(0, num_frames - len(f))), (0, 0)), mode="edge")[:num_frames]
    p = np.pad(f, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([p[i:i + len(f)] for i in range(2 * context + 1)], axis=1).astype(np.float32)


def mel_context(wave: np.ndarray, num_frames: int | None = None) -> np.ndarray:
    """(T, 40 x 5) float32: the 40 normalised log-mel columns at frames t-2 … t+2 (edges repeated)."""
    return _with_context(audio_features(wave, SAMPLE_RATE)[:, :N_MEL], CONTEXT, num_frames)


def baseline_features(kind: str, wave: np.ndarray, num_frames: int | None = None) -> np.ndarray:
    """Inputs of the ridge baseline ``kind`` (a key of :data:`BASELINES`), (T, D) float32."""
    if kind == "ridge_mel":
        return mel_context(wave, num_frames)
    return _with_context(network_features(wave, SAMPLE_RATE, visemes=True)[1], BASELINES["ridge_input"][1],
                         num_frames)


FG_BASELINE = "network input, ±4 frames, fitted on capture + FACEGOOD training takes"


def fit_ridge_with_facegood(wave: np.ndarray, clip: MotionClip, folder: Path):
    """Ridge (alpha 10) on the network input from the capture's training part
    (``wave``, ``clip``) plus the FACEGOOD training takes, jaw calibrated by
    :class:`model.training.facegood.JawCalibration` (the ``ridge_input_fg`` baseline)."""
    from .facegood import JawCalibration, load_takes
    takes = load_takes(folder)
    cal = JawCalibration.fit(clip.poses[:, 66:69], np.concatenate([t.jaw_open for t in takes]))
    X = [baseline_features("ridge_input", wave, clip.num_frames)]
    y = [jaw_opening(clip.poses)]
    for t in takes:
        X.append(baseline_features("ridge_input", load_audio(t.wav), len(t.jaw_open)))
        y.append(cal.angle(t.jaw_open))
    return ridge(np.concatenate(X), np.concatenate(y))


def ridge(X: np.ndarray, y: np.ndarray):
    """scikit-learn ``Ridge(alpha=RIDGE_ALPHA)`` fitted to (X (N, D), y (N,)): every baseline's model."""
    from sklearn.linear_model import Ridge
    return Ridge(alpha=RIDGE_ALPHA).fit(X, y)


def fit_ridge(wave: np.ndarray, jaw: np.ndarray, kind: str = "ridge_mel"):
    """:func:`ridge` from :func:`baseline_features` to ``jaw`` (T,)."""
    return ridge(baseline_features(kind, wave, len(jaw)), jaw)


#: Inputs of the cross-validated ridge ceiling (:func:`ridge_cv`): name -> columns of
#: ``network_features(visemes=True, phones=True)`` (48 acoustic, 15 visemes, 39 phones).
_LOUD = [FEATURE_NAMES.index(c) for c in LOUDNESS_NAMES]
_VIS = list(range(FEATURE_DIM, FEATURE_DIM + VISEME_DIM))
_PHONES = list(range(FEATURE_DIM + VISEME_DIM, FEATURE_DIM + VISEME_DIM + PHONE_DIM))
CV_INPUTS = {"40 log-mel": list(range(N_MEL)),
             "48 acoustic": list(range(FEATURE_DIM)),
             "visemes + loudness": _LOUD + _VIS,
             "phones + loudness": _LOUD + _PHONES,
             "visemes + phones + loudness": _LOUD + _VIS + _PHONES,
             "network input (acoustic + visemes)": list(range(FEATURE_DIM)) + _VIS}


def ridge_cv(holdout: float = 0.2, folds: int = 4, contexts: tuple = (2, 4), gap: int = 10) -> dict:
    """How well a *linear* map of each input predicts the capture's jaw, by
    blocked cross-validation **inside the training part** of the capture (the
    first ``1 - holdout``; the held-out segment is not touched).

    The training frames are cut into ``folds`` contiguous blocks; each block
    is predicted by :func:`ridge` fitted on the others minus ``gap`` frames
    next to the block.  Returns ``{context: {input: {"r", "contrast"}}}``:
    mean over blocks of Pearson r with the capture's jaw opening and of the
    phoneme contrast with the TextGrid phones, plus ``"capture"``: the
    capture's own contrast per block.  A ceiling for what the features carry
    about this speaker's jaw, not a model."""
    full = MotionClip.load(SHARED / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz")
    n = int(math.floor(full.num_frames * (1 - holdout)))
    wave = load_audio(SHARED / "beat2" / "wave16k" / "2_scott_0_1_1.wav")[:int(round(n / FPS * SAMPLE_RATE))]
    tg = textgrid_phones(SHARED / "beat2" / "textgrid" / "2_scott_0_1_1.TextGrid")
    jaw = jaw_opening(full.poses)[:n]
    feats = network_features(wave, SAMPLE_RATE, visemes=True, phones=True)[1]
    blocks = np.array_split(np.arange(n), folds)
    block_phones = [shift([p for p in tg if b[0] / FPS <= p.centre < (b[-1] + 1) / FPS], b[0] / FPS) for b in blocks]
    out: dict = {"capture": [phoneme_contrast(jaw[b], ph) for b, ph in zip(blocks, block_phones)]}
    for ctx in contexts:
        out[ctx] = {}
        for name, cols in CV_INPUTS.items():
            X = _with_context(feats[:, cols], ctx, n)
            rs, cs = [], []
            for b, ph in zip(blocks, block_phones):
                train = np.flatnonzero((np.arange(n) < b[0] - gap) | (np.arange(n) > b[-1] + gap))
                pred = ridge(X[train], jaw[train]).predict(X[b])
                rs.append(pearson(pred, jaw[b]))
                cs.append(phoneme_contrast(pred, ph))
            out[ctx][name] = {"r": float(np.mean(rs)), "contrast": float(np.nanmean(cs))}
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)
    if a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def shift(phones: list[Phone], seconds: float) -> list[Phone]:
    return [Phone(p.label, p.start - seconds, p.end - seconds) for p in phones if p.start >= seconds]


def lipsync_report(gen, seeds: list[int], steps: int, guidance: float, style: str, holdout: float = 0.2,
                   out: Path | None = None) -> dict:
    """Model vs ridge baseline vs capture; see the module doc.  ``gen`` is a
    :class:`model.generate.Generator`.  Plots go to ``out`` when given."""
    full = MotionClip.load(SHARED / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz")
    wave = load_audio(SHARED / "beat2" / "wave16k" / "2_scott_0_1_1.wav")
    tg = textgrid_phones(SHARED / "beat2" / "textgrid" / "2_scott_0_1_1.TextGrid")
    jaw_cap = jaw_opening(full.poses)
    n_train = int(math.floor(full.num_frames * (1 - holdout)))
    cut = int(round(n_train / FPS * SAMPLE_RATE))
    ridges = {k: fit_ridge(wave[:cut], jaw_cap[:n_train], k) for k in BASELINES}
    fg_dir = SHARED / "facegood"
    if fg_dir.is_dir():
        ridges["ridge_input_fg"] = fit_ridge_with_facegood(wave[:cut], full.slice(0, n_train), fg_dir)

    ho_jaw = jaw_cap[n_train:]
    ho_wave = wave[cut:cut + int(round(len(ho_jaw) / FPS * SAMPLE_RATE))]
    ho_phones = shift(tg, n_train / FPS)
    try:     # the held-out audio's own PocketSphinx phones, as every other clip gets (the 1.84 for the capture)
        ho_allphone = allphone(ho_wave)
    except PhoneError:
        ho_allphone = []
    model_jaws = [jaw_opening(gen.generate(ho_wave, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance,
                                           style=style).poses) for s in seeds]
    ridge_jaws = {k: r.predict(baseline_features(k, ho_wave, len(ho_jaw))) for k, r in ridges.items()}
    descriptions = {**{k: v[0] for k, v in BASELINES.items()}, "ridge_input_fg": FG_BASELINE}
    rep = {"settings": {"seeds": seeds, "steps": steps, "guidance": guidance, "style": style,
                        "holdout": holdout, "ridge_alpha": RIDGE_ALPHA,
                        "baselines": {k: descriptions[k] for k in ridges}},
           "heldout": {
               "capture": {"r": 1.0, "contrast": phoneme_contrast(ho_jaw, ho_phones),
                           "contrast_allphone": phoneme_contrast(ho_jaw, ho_allphone)},
               "model": {"r": float(np.mean([pearson(j, ho_jaw) for j in model_jaws])),
                         "contrast": float(np.mean([phoneme_contrast(j, ho_phones) for j in model_jaws])),
                         "contrast_allphone": float(np.mean([phoneme_contrast(j, ho_allphone) for j in model_jaws])),
                         "r_per_seed": [pearson(j, ho_jaw) for j in model_jaws]},
               **{k: {"r": pearson(j, ho_jaw), "contrast": phoneme_contrast(j, ho_phones),
                      "contrast_allphone": phoneme_contrast(j, ho_allphone)}
                  for k, j in ridge_jaws.items()},
               "frames": int(len(ho_jaw))},
           "dev_audio": {}}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        plot_phones(out / "lipsync_heldout.png", {"capture": ho_jaw, f"model seed {seeds[0]}": model_jaws[0],
                                                  "ridge (network input)": ridge_jaws["ridge_input"]}, ho_phones,
                    "held-out capture: jaw opening, TextGrid phones")
    for wav in sorted((SHARED / "dev_audio").glob("*.wav")):
        if wav.stem in NON_ENGLISH:
            continue
        w = load_audio(wav)
        try:
            phones = allphone(w)
        except PhoneError as exc:
            rep["dev_audio"][wav.stem] = {"error": str(exc)}
            continue
        jaws = [jaw_opening(gen.generate(w, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance,
                                         style=style).poses) for s in seeds]
        rj = {k: r.predict(baseline_features(k, w, len(jaws[0]))) for k, r in ridges.items()}
        rep["dev_audio"][wav.stem] = {
            "model": float(np.nanmean([phoneme_contrast(j, phones) for j in jaws])),
            **{k: phoneme_contrast(j, phones) for k, j in rj.items()}, "phones": len(phones)}
        if out is not None:
            plot_phones(out / f"lipsync_dev_{wav.stem}.png",
                        {f"model seed {seeds[0]}": jaws[0], "ridge (network input)": rj["ridge_input"]},
                        phones, f"{wav.stem}: jaw opening, PocketSphinx allphone phones")
    dev = [v for v in rep["dev_audio"].values() if "model" in v]
    rep["dev_mean"] = {k: float(np.mean([v[k] for v in dev])) if dev else float("nan")
                       for k in ("model", *ridges)}
    if fg_dir.is_dir():
        from .facegood import HELD_OUT, load_takes
        take = load_takes(fg_dir, exclude=(), only=HELD_OUT)[0]
        w = load_audio(take.wav)
        jaws = [jaw_opening(gen.generate(w, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance,
                                         style=style).poses) for s in seeds]
        rep["facegood_heldout"] = {"take": take.name, "seconds": len(take.jaw_open) / FPS,
                                   "model": float(np.mean([pearson(j, take.jaw_open) for j in jaws])),
                                   **{k: pearson(r.predict(baseline_features(k, w, len(take.jaw_open))), take.jaw_open)
                                      for k, r in ridges.items()}}
    return rep


def jaw_jerk(jaw: np.ndarray) -> float:
    """Mean |third difference| of the jaw opening, rad/s³ at 30 fps."""
    return float(np.abs(np.diff(np.asarray(jaw, np.float64), n=3)).mean() * FPS ** 3)


def closure_effect(gen, amounts: list[float], seeds: list[int], steps: int, guidance: float, style: str) -> dict:
    """Phoneme contrast and jaw jerk of the dev clips' takes under the *Lip
    Closure* dial (``model/adjust.py``, with the cue Generate stores for the
    take: ``Generator.closure_cue``) at each amount (percent), mean over seeds."""
    from ..adjust import Adjustments, adjust
    out = {}
    for name, w, phones in english_dev_clips():
        clips = [gen.generate(w, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance, style=style) for s in seeds]
        cue = gen.closure_cue
        out[name] = {}
        for a in amounts:
            jaws = [jaw_opening(adjust(c, Adjustments(closure=a), cue=cue).poses) for c in clips]
            out[name][a] = {"contrast": float(np.nanmean([phoneme_contrast(j, phones) for j in jaws])),
                            "jaw_jerk": float(np.mean([jaw_jerk(j) for j in jaws]))}
    return out


def english_dev_clips():
    """Yield (name, 16 kHz wave, allphone phones) of every English ``dev_audio`` clip."""
    for wav in sorted((SHARED / "dev_audio").glob("*.wav")):
        if wav.stem not in NON_ENGLISH:
            w = load_audio(wav)
            yield wav.stem, w, allphone(w)


def dev_contrasts(gen, seeds: list[int], steps: int, guidance: float, style: str) -> dict:
    """Per English dev clip: phoneme contrast and jaw jerk (rad/s³), mean over
    ``seeds`` -- the dev-only numbers that choose between trained networks and
    settings (no held-out data)."""
    out = {}
    for name, w, phones in english_dev_clips():
        jaws = [jaw_opening(gen.generate(w, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance, style=style).poses)
                for s in seeds]
        out[name] = {"contrast": float(np.nanmean([phoneme_contrast(j, phones) for j in jaws])),
                         "jaw_jerk": float(np.mean([jaw_jerk(j) for j in jaws]))}
    return out


def tune_face_sigma(weights: str | None, sigmas: list[float], seeds: list[int], steps: int, guidance: float,
                    style: str, holdout: float = 0.2, write: bool = False) -> dict:
    """Choose ``face_sigma`` (the face columns' temporal smoothing) on the dev
    clips only: the value whose mean jaw jerk over the dev clips is closest
    (log ratio) to the jaw jerk of the *training* part of the capture.  With
    ``write`` the choice and the grid's numbers go into ``cospeech.json``."""
    from ..generate import CONFIG_FILE, DEFAULT_WEIGHTS_DIR, Generator
    full = MotionClip.load(SHARED / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz")
    target = jaw_jerk(jaw_opening(full.poses[:int(math.floor(full.num_frames * (1 - holdout)))]))
    gen = Generator.load(weights, backend="onnx")
    by = {}
    for sg in sigmas:
        gen.face_sigma = sg
        by[sg] = dev_contrasts(gen, seeds, steps, guidance, style)
    jerk = {sg: float(np.mean([v["jaw_jerk"] for v in r.values()])) for sg, r in by.items()}
    best = min(sigmas, key=lambda sg: abs(math.log(jerk[sg] / target)))
    sel = {"rule": "on the dev_audio clips only: face_sigma whose mean jaw jerk is closest (log ratio) to the "
                   f"training part of the capture ({target:.0f} rad/s^3)",
           "settings": {"seeds": seeds, "steps": steps, "guidance": guidance, "style": style},
           "dev_mean_jaw_jerk_by_face_sigma": {str(k): round(v, 1) for k, v in jerk.items()},
           "dev_mean_contrast_by_face_sigma": {str(k): round(float(np.mean([v["contrast"] for v in r.values()])), 3)
                                               for k, r in by.items()},
           "command": "python -m model.training.lipsync_eval --tune-face-sigma ... --write"}
    if write:
        p = Path(weights or DEFAULT_WEIGHTS_DIR) / CONFIG_FILE
        meta = json.loads(p.read_text())
        meta["face_sigma"] = best
        meta["face_sigma_selection"] = sel
        p.write_text(json.dumps(meta, indent=1))
    return {"chosen": best, **sel}


def arkit_face_report(gen, seeds: list[int], steps: int, guidance: float, style: str) -> dict:
    """The ARKit face (:func:`model.arkit.arkit_weights`) on each English dev clip,
    mean over seeds: jawOpen phoneme contrast; mean lip closure (mouthPress,
    mouthClose) at P/B/M centres vs open-vowel centres (PocketSphinx phones);
    blinks per minute; fraction of frames with the brows raised > 0.1; the
    dominant viseme at P/B/M and at open vowels (when the table is built)."""
    from ..arkit import ARKIT_NAMES, VISEME_NAMES, VISEME_TABLE, arkit_weights, viseme_weights
    import os
    ix = {n: i for i, n in enumerate(ARKIT_NAMES)}
    out = {}
    for name, w, phones in english_dev_clips():
        rows = []
        for s in seeds:
            clip = gen.generate(w, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance, style=style)
            a = arkit_weights(clip, seed=s)
            bl = centre_frames(phones, len(a), FPS, BILABIALS)
            op = centre_frames(phones, len(a), FPS, OPEN_VOWELS)
            blink = a[:, ix["eyeBlinkLeft"]] > 0.5
            row = {"jawOpen_contrast": phoneme_contrast(a[:, ix["jawOpen"]], phones),
                   "press_PBM": float(a[bl, ix["mouthPressLeft"]].mean()),
                   "press_open": float(a[op, ix["mouthPressLeft"]].mean()),
                   "close_PBM": float(a[bl, ix["mouthClose"]].mean()),
                   "close_open": float(a[op, ix["mouthClose"]].mean()),
                   "blinks_per_min": float(np.sum(np.diff(blink.astype(int)) == 1) / (len(a) / FPS / 60)),
                   "brow_raised": float(np.mean(a[:, ix["browInnerUp"]] > 0.1))}
            if os.path.exists(VISEME_TABLE):
                v = viseme_weights(a)
                row["viseme_PBM"] = VISEME_NAMES[int(np.argmax(v[bl].mean(0)))]
                row["viseme_open"] = VISEME_NAMES[int(np.argmax(v[op].mean(0)))]
            rows.append(row)
        out[name] = {k: (float(np.nanmean([r[k] for r in rows])) if not isinstance(rows[0][k], str)
                             else rows[0][k]) for k in rows[0]}
    return out


def format_lipsync(rep: dict) -> str:
    h = rep["heldout"]
    lines = ["| motion | held-out jaw r | held-out contrast, TextGrid phones | held-out contrast, allphone phones "
             "| dev clips contrast (mean) |", "|---|---|---|---|---|",
             f"| capture | 1 | {h['capture']['contrast']:.2f} | {h['capture']['contrast_allphone']:.2f} | – |",
             *(f"| ridge baseline ({desc}) | {h[k]['r']:.2f} | {h[k]['contrast']:.2f} | "
               f"{h[k]['contrast_allphone']:.2f} | {rep['dev_mean'][k]:.2f} |"
               for k, desc in rep["settings"]["baselines"].items()),
             f"| model (mean of {len(rep['settings']['seeds'])} seeds) | {h['model']['r']:.2f} | "
             f"{h['model']['contrast']:.2f} | {h['model']['contrast_allphone']:.2f} | {rep['dev_mean']['model']:.2f} |",
             "",
             "| dev clip | phones | model contrast | " + " | ".join(rep["settings"]["baselines"]) + " |",
             "|---|---|---|" + "---|" * len(rep["settings"]["baselines"])]
    for name, v in rep["dev_audio"].items():
        if "model" in v:
            lines.append(f"| {name} | {v['phones']} | {v['model']:.2f} | "
                         + " | ".join(f"{v[k]:.2f}" for k in rep["settings"]["baselines"]) + " |")
        else:
            lines.append(f"| {name} | – | {v['error']} | |")
    if "facegood_heldout" in rep:
        f = rep["facegood_heldout"]
        lines += ["", f"FACEGOOD held-out take {f['take']} ({f['seconds']:.1f} s), jaw opening r with its jawOpen: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in f.items() if k not in ("take", "seconds"))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..generate import DEFAULT_STYLE, Generator
    ap = argparse.ArgumentParser(prog="python -m model.training.lipsync_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--out", type=Path, default=Path("out/eval"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--style", default=DEFAULT_STYLE)
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--closure", type=float, nargs="*", default=None,
                    help="only measure the Lip Closure dial at these amounts (percent) on the dev clips")
    ap.add_argument("--arkit", action="store_true", help="only report the ARKit face on the dev clips")
    ap.add_argument("--dev-only", action="store_true",
                    help="only the dev clips' contrast and jaw jerk (choosing between networks; no held-out data)")
    ap.add_argument("--tune-face-sigma", type=float, nargs="*", default=None,
                    help="choose face_sigma among these values on the dev clips (see tune_face_sigma)")
    ap.add_argument("--write", action="store_true", help="with --tune-face-sigma: store the choice in the weights json")
    ap.add_argument("--ridge-cv", action="store_true",
                    help="only the cross-validated ridge ceiling inside the capture's training part (ridge_cv)")
    args = ap.parse_args(argv)
    if args.ridge_cv:
        cv = ridge_cv()
        print("capture's own contrast per block: " + " / ".join(f"{c:.2f}" for c in cv.pop("capture")))
        print("| input | context | jaw r | contrast |\n|---|---|---|---|")
        for ctx, by in cv.items():
            for name, v in by.items():
                print(f"| {name} | ±{ctx} | {v['r']:.3f} | {v['contrast']:.2f} |")
        return 0
    if args.tune_face_sigma is not None:
        print(json.dumps(tune_face_sigma(args.weights, args.tune_face_sigma or [0.0, 0.5, 0.75, 1.0, 1.5],
                                         args.seeds, args.steps, args.guidance, args.style, write=args.write), indent=1))
        return 0
    gen = Generator.load(args.weights, backend=args.backend)
    if args.dev_only:
        rep = dev_contrasts(gen, args.seeds, args.steps, args.guidance, args.style)
        for name, r in rep.items():
            print(f"{name}: contrast {r['contrast']:.2f}, jaw jerk {r['jaw_jerk']:.1f} rad/s^3")
        print(f"mean contrast {np.mean([r['contrast'] for r in rep.values()]):.2f}, "
              f"min {min(r['contrast'] for r in rep.values()):.2f}")
        return 0
    if args.arkit:
        rep = arkit_face_report(gen, args.seeds, args.steps, args.guidance, args.style)
        keys = list(next(iter(rep.values())))
        print("| dev clip | " + " | ".join(keys) + " |\n|---" * 1 + "|---" * len(keys) + "|")
        for name, r in rep.items():
            print(f"| {name} | " + " | ".join(v if isinstance(v, str) else f"{v:.2f}" for v in r.values()) + " |")
        return 0
    if args.closure is not None:
        eff = closure_effect(gen, args.closure or [0, 50, 100], args.seeds, args.steps, args.guidance, args.style)
        print("| dev clip | " + " | ".join(f"closure {a:g} %: contrast / jaw jerk" for a in eff[next(iter(eff))]) + " |")
        for name, by in eff.items():
            print(f"| {name} | " + " | ".join(f"{v['contrast']:.2f} / {v['jaw_jerk']:.1f}" for v in by.values()) + " |")
        return 0
    rep = lipsync_report(gen, args.seeds, args.steps, args.guidance, args.style, out=args.out)
    (args.out / "lipsync.json").write_text(json.dumps(rep, indent=1))
    print(format_lipsync(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
