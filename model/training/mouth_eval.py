"""The ARKit mouth's report: the learned mouth vs a phone rule vs a ridge, on
FACEGOOD's held-out take and on the English dev clips.

    .venv/bin/python -m model.training.mouth_eval --out out/mouth_eval --seeds 0 1 2

Rows (every report has the two baselines):

* **model**: ``Generator.generate`` (8 steps, guidance 2, ``moderate`` by
  default, the shipped output: learned ARKit mouth + phone-timed lip shapes,
  ``model/mouth.py``), its ``MotionClip.arkit_mouth``; mean over seeds of
  each number.  **learned only**: the same without the phone-timed shapes
  (the ARKit mouth head, ``model/mouth_head.py``).  **sampled ARKit
  modality**: the flow network's own ARKit columns, without the head or the
  phone-timed shapes (what shipped before the head).
* **phone rule**: PocketSphinx ``allphone`` phones -> Oculus viseme
  (``phones.PHONE_TO_VISEME``, the network input's 15 one-hots) -> that
  viseme's ARKit mix in the TalkingHead table (``model/assets/oculus_visemes.json``)
  -> Gaussian, sigma 1.5 frames.
* **ridge**: scikit-learn ``Ridge`` (alpha 10) from the network input (48
  acoustic + 15 visemes, ±4 frames) to each of the 27 ARKit mouth shapes,
  fitted on FACEGOOD's training takes (``1114_3_16`` held out).
* **jaw heuristic** (what shipped before the ARKit mouth): the same takes'
  ARKit weights without their learned mouth (:func:`model.arkit.arkit_weights`
  of the clip with ``arkit_mouth`` removed: jawOpen from the SMPL-X jaw, lip
  closure where the jaw nearly closes).

Numbers:

* FACEGOOD held-out take ``1114_3_16``: Pearson r (lag 0) per shape against
  its hand animation (upstream's ARKit table), over the shapes that take
  animates (std > :data:`ANIMATED_STD`), their mean (a shape a row never
  moves counts as 0), and ``jawOpen``.
* Every English ``dev_audio`` clip (PocketSphinx phone centres; no ground
  truth there): **rounding** = (funnel + pucker at UW UH OW AO W − at IY IH
  EY EH AE) / std over speech phones; **closure** = (mouthClose + mean
  press + mean roll at P B M − at open vowels) / std over speech phones; the
  **jawOpen phoneme contrast** (:func:`model.phones.phoneme_contrast`), and
  for the model also the SMPL-X jaw's contrast (the lip-sync issue's numbers).

Never imports bpy.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..features import FEATURE_DIM, SAMPLE_RATE, load_audio, network_features
from ..motion import ARKIT_MOUTH_NAMES
from ..phones import BILABIALS, OPEN_VOWELS, VISEME_DIM, centre_frames, jaw_opening, phoneme_contrast
from .lipsync_eval import SHARED, baseline_features, english_dev_clips, pearson, ridge

ROUNDED = frozenset({"UW", "UH", "OW", "AO", "W"})
SPREAD = frozenset({"IY", "IH", "EY", "EH", "AE"})
PHONE_RULE_SIGMA = 1.5
ANIMATED_STD = 0.01
_I = {n: i for i, n in enumerate(ARKIT_MOUTH_NAMES)}


def phone_rule(wave: np.ndarray, num_frames: int) -> np.ndarray:
    """(T, 27) the phone-rule baseline's ARKit mouth (module doc)."""
    from ..arkit import ARKIT_NAMES, load_viseme_table
    vis = network_features(wave, SAMPLE_RATE, visemes=True)[1][:, FEATURE_DIM:FEATURE_DIM + VISEME_DIM]
    vis = np.pad(vis, ((0, max(0, num_frames - len(vis))), (0, 0)), mode="edge")[:num_frames]
    table = load_viseme_table()[:, [ARKIT_NAMES.index(n) for n in ARKIT_MOUTH_NAMES]]
    return np.clip(gaussian_filter1d(vis @ table, PHONE_RULE_SIGMA, axis=0, mode="nearest"), 0, 1)


def _learned(gen, wave, seed, steps, guidance, style):
    """The take without the phone-timed lip shapes (``Generator.phone_shapes`` off)."""
    gen.phone_shapes = False
    try:
        return gen.generate(wave, SAMPLE_RATE, seed=seed, steps=steps, guidance=guidance, style=style)
    finally:
        gen.phone_shapes = True


def jaw_heuristic(clip) -> np.ndarray:
    """(T, 27) the ARKit mouth :func:`model.arkit.arkit_weights` gives ``clip`` without its learned mouth."""
    from ..arkit import ARKIT_NAMES, arkit_weights
    bare = clip.slice(0, clip.num_frames)
    bare.arkit_mouth = None
    return arkit_weights(bare)[:, [ARKIT_NAMES.index(n) for n in ARKIT_MOUTH_NAMES]]


def fit_mouth_ridge(takes):
    """:func:`lipsync_eval.ridge` from the network input (±4 frames) to the 27 shapes of ``takes``."""
    X = [baseline_features("ridge_input", load_audio(t.wav), len(t.arkit_mouth)) for t in takes]
    return ridge(np.concatenate(X), np.concatenate([t.arkit_mouth for t in takes]))


def lip_contrasts(mouth: np.ndarray, phones) -> dict:
    """Rounding and closure contrasts and the jawOpen phoneme contrast of (T, 27) ``mouth`` (module doc)."""
    T = len(mouth)
    speech = centre_frames(phones, T, 30.0, frozenset({p.label for p in phones} - {"SIL", "sil", ""}))

    def contrast(v, a, b):
        ia, ib = centre_frames(phones, T, 30.0, a), centre_frames(phones, T, 30.0, b)
        sd = v[speech].std() if len(speech) > 1 else 0.0
        if len(ia) == 0 or len(ib) == 0:
            return float("nan")            # the clip has no such phone
        if sd < 1e-9:
            return 0.0
        return float((v[ia].mean() - v[ib].mean()) / sd)

    m = np.asarray(mouth, np.float64)
    rounding = m[:, _I["mouthFunnel"]] + m[:, _I["mouthPucker"]]
    closure = (m[:, _I["mouthClose"]] + 0.5 * (m[:, _I["mouthPressLeft"]] + m[:, _I["mouthPressRight"]])
               + 0.5 * (m[:, _I["mouthRollLower"]] + m[:, _I["mouthRollUpper"]]))
    return {"rounding": contrast(rounding, ROUNDED, SPREAD), "closure": contrast(closure, BILABIALS, OPEN_VOWELS),
            "jawOpen_contrast": float(phoneme_contrast(m[:, _I["jawOpen"]], phones)),
            "jawOpen_open_vowels": _mean_at(m[:, _I["jawOpen"]], centre_frames(phones, T, 30.0, OPEN_VOWELS))}


def _mean_at(v: np.ndarray, idx) -> float:
    return float(v[idx].mean()) if len(idx) else float("nan")


def spread(pred: np.ndarray, truth: np.ndarray, shapes: list[str]) -> float:
    """Mean over ``shapes`` of std(pred) / std(truth): 1 = the animation's amplitude."""
    return float(np.mean([pred[:, _I[n]].std() / truth[:, _I[n]].std() for n in shapes]))


def per_shape_r(pred: np.ndarray, truth: np.ndarray, shapes: list[str]) -> dict:
    """Pearson r per shape; a shape the row never moves counts as r = 0 (not left out of the mean)."""
    return {n: float(np.nan_to_num(pearson(pred[:, _I[n]], truth[:, _I[n]]))) for n in shapes}


def report(gen, seeds: list[int], steps: int = 8, guidance: float = 2.0, style: str = "moderate") -> dict:
    """The module doc's numbers as a dict (rows ``model``, ``phone rule``, ``ridge``)."""
    from .facegood import HELD_OUT, load_takes
    folder = SHARED / "facegood"
    held = load_takes(folder, exclude=(), only=HELD_OUT)[0]
    rdg = fit_mouth_ridge(load_takes(folder))
    truth = held.arkit_mouth
    T = len(truth)
    shapes = [n for n in ARKIT_MOUTH_NAMES if truth[:, _I[n]].std() > ANIMATED_STD]
    wave = load_audio(held.wav)
    rows = {"model": [], "jaw heuristic": [], "phone rule": [phone_rule(wave, T)],
            "ridge": [np.clip(rdg.predict(baseline_features("ridge_input", wave, T)), 0, 1)]}
    rows["learned only"], rows["sampled ARKit modality"] = [], []
    for s in seeds:
        c = gen.generate(wave, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance, style=style)
        rows["model"].append(c.arkit_mouth[:T])
        rows["jaw heuristic"].append(jaw_heuristic(c)[:T])
        rows["learned only"].append(_learned(gen, wave, s, steps, guidance, style).arkit_mouth[:T])
        head, gen.mouth_head = gen.mouth_head, None
        try:
            rows["sampled ARKit modality"].append(_learned(gen, wave, s, steps, guidance, style).arkit_mouth[:T])
        finally:
            gen.mouth_head = head
    held_out = {}
    for k, preds in rows.items():
        rs = [per_shape_r(p, truth, shapes) for p in preds]
        per = {n: float(np.mean([r[n] for r in rs])) for n in shapes}
        held_out[k] = {"mean_r": float(np.nanmean(list(per.values()))), "jawOpen_r": per.get("jawOpen"),
                       "per_shape_r": per, "spread": float(np.mean([spread(p, truth, shapes) for p in preds])),
                       "jawOpen_p95": float(np.mean([np.percentile(p[:, _I["jawOpen"]], 95) for p in preds]))}
    held_out["hand animation"] = {"spread": 1.0, "jawOpen_p95": float(np.percentile(truth[:, _I["jawOpen"]], 95))}
    dev = {}
    for name, w, phones in english_dev_clips():
        n = int(np.ceil(len(w) / SAMPLE_RATE * 30))
        clips = [gen.generate(w, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance, style=style) for s in seeds]
        model = [lip_contrasts(c.arkit_mouth, phones) for c in clips]
        row = {k: float(np.nanmean([m[k] for m in model])) for k in model[0]}
        row["smplx_jaw_contrast"] = float(np.nanmean([phoneme_contrast(jaw_opening(c.poses), phones) for c in clips]))
        heur = [lip_contrasts(jaw_heuristic(c), phones) for c in clips]
        learned = [lip_contrasts(_learned(gen, w, s, steps, guidance, style).arkit_mouth, phones) for s in seeds]
        dev[name] = {"model": row, "learned only": {k: float(np.nanmean([m[k] for m in learned])) for k in learned[0]},
                     "jaw heuristic": {k: float(np.nanmean([m[k] for m in heur])) for k in heur[0]},
                     "phone rule": lip_contrasts(phone_rule(w, n), phones),
                     "ridge": lip_contrasts(np.clip(rdg.predict(baseline_features("ridge_input", w, n)), 0, 1),
                                            phones)}
    return {"settings": {"seeds": seeds, "steps": steps, "guidance": guidance, "style": style},
            "facegood_heldout": {"take": held.name, "animated_shapes": shapes, "rows": held_out},
            "dev_clips": dev}


def format_report(rep: dict) -> str:
    h = rep["facegood_heldout"]
    rows = {k: v for k, v in h["rows"].items() if "mean_r" in v}
    lines = [f"FACEGOOD held-out take {h['take']}, Pearson r over the {len(h['animated_shapes'])} shapes it animates; "
             "spread = std / the hand animation's std (mean over those shapes); jawOpen p95",
             "", "| row | mean r | jawOpen r | spread | jawOpen p95 |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['mean_r']:.2f} | {v['jawOpen_r']:.2f} | {v['spread']:.2f} | {v['jawOpen_p95']:.2f} |"
              if "mean_r" in v else f"| {k} | – | – | {v['spread']:.2f} | {v['jawOpen_p95']:.2f} |"
              for k, v in h["rows"].items()]
    lines += ["", "| shape | " + " | ".join(rows) + " |", "|---" * (len(rows) + 1) + "|"]
    lines += [f"| {n} | " + " | ".join(f"{v['per_shape_r'][n]:.2f}" for v in rows.values()) + " |"
              for n in h["animated_shapes"]]
    lines += ["", "English dev clips (PocketSphinx phone centres)", "",
              "| clip | row | rounding | closure | jawOpen contrast | jawOpen at open vowels | SMPL-X jaw contrast |",
              "|---|---|---|---|---|---|---|"]
    for clip, rows in rep["dev_clips"].items():
        for k, v in rows.items():
            sj = f"{v['smplx_jaw_contrast']:.2f}" if "smplx_jaw_contrast" in v else "–"
            lines.append(f"| {clip} | {k} | {v['rounding']:.2f} | {v['closure']:.2f} | "
                         f"{v['jawOpen_contrast']:.2f} | {v['jawOpen_open_vowels']:.2f} | {sj} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.mouth_eval", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=None, help="weights folder (default: the shipped weights)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", default="out/mouth_eval")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--style", default="moderate")
    args = ap.parse_args(argv)
    import warnings
    warnings.filterwarnings("ignore", "Mean of empty slice")     # a clip without rounded vowels: nan, shown as such
    from ..generate import Generator
    gen = Generator.load(args.weights, backend=args.backend)
    rep = report(gen, args.seeds, args.steps, args.guidance, args.style)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mouth_report.json").write_text(json.dumps(rep, indent=1))
    text = format_report(rep)
    (out / "mouth_report.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
