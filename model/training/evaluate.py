"""Evaluator: the metrics of DESIGN.md ("Evaluation") for generated and captured motion.

Pure numpy/scipy/librosa (+ torch via generate.py); never imports bpy.

    python -m model.training.evaluate --out out/eval            # held-out 20 % + dev_audio
    python -m model.training.evaluate --capture-only            # the capture's own numbers

Metric definitions (all at 30 fps; joint positions from
``skeleton.forward_kinematics``, metres):

* ``lip_r``: max over lags -2..2 frames of Pearson r between jaw opening
  ``|poses[:, 66]|`` (jaw x rotation, rad) and the audio RMS envelope
  (``features.rms_envelope``).  Lag L pairs motion frame t+L with audio frame t.
* ``exp_r``: same with the expression speed ``||e[t] - e[t-1]||``.
* ``BC``: beat consistency as in EMAGE (Liu et al., CVPR 2024;
  ``utils/metric.py`` ``alignment``): audio beats = ``librosa.onset.onset_detect``
  (hop 512, times); for each upper-body joint (``skeleton.UPPER_BODY``) the
  joint speed (central differences) divided by the joint's mean speed in the
  reference capture, motion beats = local minima (``argrelextrema``, order 7)
  where that ratio > 0.3; score = mean over audio beats of
  ``exp(-d^2 / (2 sigma^2))``, d = distance to the nearest motion beat,
  sigma = 0.3 s, averaged over joints; the first and last 2 s are dropped.
* ``jerk``: mean over frames and all 55 joints of ``||x[t+3] - 3x[t+2] + 3x[t+1] - x[t]|| * 30^3`` (m/s^3).
* ``speed``: mean upper-body joint speed ``||x[t+1] - x[t]|| * 30`` (m/s).
* ``diversity``: mean pairwise distance (m, upper-body joints relative to the
  pelvis, averaged over frames) between takes with different seeds.
* ``novelty``: for every 2 s window (stride 0.5 s) the mean per-joint
  distance (m, upper body relative to pelvis) to the nearest training window;
  compare with the same number for the real held-out capture.
* ``silence``: upper-body speed and jaw opening in frames whose RMS is below
  5 % of the clip's 95th percentile RMS, vs the other frames.
* ``border``: in-painting seams: upper-body acceleration (m/s^2) at the two
  borders of a regenerated range vs the capture's 99th percentile
  acceleration; and whether frames outside the range stayed bit-identical.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy.signal import argrelextrema

from ..features import SAMPLE_RATE, load_audio, rms_envelope
from ..motion import MotionClip
from .plots import plot_jaw, plot_speed
from ..skeleton import UPPER_BODY, forward_kinematics

FPS = 30.0
BC_SIGMA = 0.3
BC_ORDER = 7
BC_THRESHOLD = 0.3
TRIM_S = 2.0
TRANS_SIGMAS = (2.0, 4.0, 8.0, 12.0, 20.0)
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def best_lag_r(signal: np.ndarray, env: np.ndarray, max_lag: int = 2) -> tuple[float, int]:
    """Best Pearson r (and its lag) of signal[t + lag] vs env[t], lag in -max_lag..max_lag."""
    n = min(len(signal), len(env))
    signal, env = np.asarray(signal[:n], np.float64), np.asarray(env[:n], np.float64)
    best = (-2.0, 0)
    for lag in range(-max_lag, max_lag + 1):
        s = signal[max_lag + lag:n - max_lag + lag]
        e = env[max_lag:n - max_lag]
        r = _pearson(s, e)
        if r > best[0]:
            best = (r, lag)
    return best


def lip_r(clip: MotionClip, env: np.ndarray) -> float:
    """Jaw opening |poses[:, 66]| vs RMS envelope, best r over lags -2..2."""
    return best_lag_r(np.abs(clip.poses[:, 66]), env)[0]


def exp_r(clip: MotionClip, env: np.ndarray) -> float:
    """Expression speed vs RMS envelope (frames 1..T-1), best r over lags -2..2."""
    sp = np.linalg.norm(np.diff(clip.expressions, axis=0), axis=1)
    return best_lag_r(sp, env[1:])[0]


def joint_speed(pos: np.ndarray) -> np.ndarray:
    """(T, J) speed in m/s by central differences (EMAGE ``load_pose``)."""
    v = np.gradient(pos, axis=0) * FPS
    return np.linalg.norm(v, axis=-1)


def mean_joint_speed(pos: np.ndarray) -> np.ndarray:
    """(J,) mean speed per joint (EMAGE's ``avg_vel`` normaliser)."""
    return joint_speed(pos).mean(axis=0)


def beat_consistency(pos: np.ndarray, wave: np.ndarray, ref_mean_speed: np.ndarray,
                     sr: int = SAMPLE_RATE) -> float:
    """EMAGE BC (see module docstring).  pos: (T, 55, 3); wave at 16 kHz."""
    import librosa
    T = pos.shape[0]
    a0, a1 = int(TRIM_S * FPS), T - int(TRIM_S * FPS)
    if a1 - a0 < 2 * BC_ORDER + 2:
        return float("nan")
    seg = wave[int(a0 / FPS * sr):int(a1 / FPS * sr)]
    onsets = librosa.onset.onset_detect(y=seg, sr=sr, hop_length=512, units="time")
    if len(onsets) == 0:
        return float("nan")
    sp = joint_speed(pos)[a0:a1] / np.maximum(ref_mean_speed, 1e-8)
    scores = []
    for j in UPPER_BODY:
        mins = argrelextrema(sp[:, j], np.less, order=BC_ORDER)[0]
        mins = mins[sp[mins, j] > BC_THRESHOLD] / FPS
        if len(mins) == 0:
            scores.append(0.0)
            continue
        d = np.abs(onsets[:, None] - mins[None, :]).min(axis=1)
        scores.append(float(np.mean(np.exp(-d ** 2 / (2 * BC_SIGMA ** 2)))))
    return float(np.mean(scores))


def jerk(pos: np.ndarray) -> float:
    """Mean norm of the 3rd difference of all joint positions x 30^3 (m/s^3)."""
    return float(np.linalg.norm(np.diff(pos, n=3, axis=0), axis=-1).mean() * FPS ** 3)


def upper_speed(pos: np.ndarray) -> float:
    """Mean upper-body joint speed (m/s), forward differences."""
    return float(np.linalg.norm(np.diff(pos[:, list(UPPER_BODY)], axis=0), axis=-1).mean() * FPS)


def _rel_upper(pos: np.ndarray) -> np.ndarray:
    return pos[:, list(UPPER_BODY)] - pos[:, :1]


def windows(pos_rel: np.ndarray, length: int = 60, stride: int = 15) -> np.ndarray:
    """(N, length, J, 3) windows of a (T, J, 3) array."""
    starts = range(0, max(1, pos_rel.shape[0] - length + 1), stride)
    return np.stack([pos_rel[s:s + length] for s in starts if s + length <= pos_rel.shape[0]])


def novelty(pos: np.ndarray, train_pos: np.ndarray) -> float:
    """Mean over 2 s windows of the distance (m) to the nearest training window."""
    g = windows(_rel_upper(pos))
    tr = windows(_rel_upper(train_pos), stride=3)
    dists = []
    for w in g:
        d = np.linalg.norm(tr - w[None], axis=-1).mean(axis=(1, 2))
        dists.append(d.min())
    return float(np.mean(dists))


def diversity(pos_list: list[np.ndarray]) -> float:
    """Mean pairwise per-joint distance (m) between takes (upper body rel. pelvis)."""
    rel = [_rel_upper(p) for p in pos_list]
    ds = [np.linalg.norm(rel[i] - rel[j], axis=-1).mean() for i in range(len(rel)) for j in range(i + 1, len(rel))]
    return float(np.mean(ds)) if ds else float("nan")


def silence_stats(clip: MotionClip, pos: np.ndarray, env: np.ndarray) -> dict:
    """Upper-body speed (m/s) and jaw opening (rad) in silent vs speech frames."""
    n = min(len(env), clip.num_frames)
    silent = env[:n] < 0.05 * np.percentile(env[:n], 95)
    sp = np.concatenate([[0.0], np.linalg.norm(np.diff(pos[:n, list(UPPER_BODY)], axis=0), axis=-1).mean(1) * FPS])
    jaw = np.abs(clip.poses[:n, 66])
    out = {"silent_fraction": float(silent.mean())}
    for name, m in (("silent", silent), ("speech", ~silent)):
        out[f"speed_{name}"] = float(sp[m].mean()) if m.any() else float("nan")
        out[f"jaw_{name}"] = float(jaw[m].mean()) if m.any() else float("nan")
    return out


def core_metrics(clip: MotionClip, wave: np.ndarray, ref_mean_speed: np.ndarray) -> dict:
    """lip_r, exp_r, BC, jerk, speed (+ silence stats) for one clip and its 16 kHz audio."""
    env = rms_envelope(wave, SAMPLE_RATE)
    pos = forward_kinematics(clip.poses, clip.trans)
    return {"lip_r": lip_r(clip, env), "exp_r": exp_r(clip, env),
            "BC": beat_consistency(pos, wave, ref_mean_speed), "jerk": jerk(pos), "speed": upper_speed(pos),
            "silence": silence_stats(clip, pos, env), "frames": clip.num_frames}


def capture_reference(data_dir: Path) -> dict:
    """Metrics of the full capture 2_scott_0_1_1 with its own audio (and with wrong audio)."""
    clip = MotionClip.load(data_dir / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz")
    wave = load_audio(data_dir / "beat2" / "wave16k" / "2_scott_0_1_1.wav")
    pos = forward_kinematics(clip.poses, clip.trans)
    ref = mean_joint_speed(pos)
    own = core_metrics(clip, wave, ref)
    wrong = load_audio(data_dir / "dev_audio" / "beat2_scott_2_2.wav")
    n = min(len(wrong), len(wave))
    wr = core_metrics(clip.slice(0, int(n / SAMPLE_RATE * FPS)), wrong[:n], ref)
    return {"own_audio": own, "wrong_audio": {k: wr[k] for k in ("lip_r", "exp_r", "BC")}}


def border_check(gen, wave: np.ndarray, take: MotionClip, a: int, b: int, seed: int, steps: int,
                 style: str, accel_p99: float) -> dict:
    """Regenerate frames [a, b) of ``take`` with another seed and measure the seams."""
    mask = np.ones(take.num_frames, bool)
    mask[a:b] = False
    new = gen.generate(wave, SAMPLE_RATE, seed=seed, steps=steps, style=style, known=take, known_mask=mask)
    outside_identical = bool(np.array_equal(new.poses[mask], take.poses[mask])
                             and np.array_equal(new.expressions[mask], take.expressions[mask])
                             and np.array_equal(new.trans[mask], take.trans[mask]))
    pos = forward_kinematics(new.poses, new.trans)[:, list(UPPER_BODY)]
    acc = np.linalg.norm(np.diff(pos, n=2, axis=0), axis=-1).mean(1) * FPS ** 2  # acc[i] centred on frame i+1
    border = [float(acc[a - 2:a + 1].max()), float(acc[b - 2:b + 1].max())]
    inside_change = float(np.abs(new.poses[a:b] - take.poses[a:b]).mean())
    return {"range": [a, b], "outside_bit_identical": outside_identical, "border_accel_m_s2": border,
            "capture_accel_p99_m_s2": accel_p99, "within_capture_p99": bool(max(border) <= accel_p99),
            "mean_abs_pose_change_inside_rad": inside_change}


def tune_smoothing(weights: str | None, sigmas: list[float], steps: int, guidance: float, style: str,
                   holdout: float = 0.2, write: bool = False, device: str = "cpu") -> dict:
    """Choose ``smooth_sigma`` without touching the held-out data.

    Generates motion for ``dev_audio/beat2_scott_2_2.wav`` (same speaker, a
    take that is not in training, no motion ground truth).  First
    ``trans_sigma`` is chosen (grid ``TRANS_SIGMAS``) so that the root
    translation speed is closest (log ratio) to the *training* part of the
    capture; then ``smooth_sigma`` (grid ``sigmas``) so that the jerk is
    closest to the training part's jerk.  With ``write`` both are stored in
    the weights' ``cospeech.json``.
    """
    from ..generate import CONFIG_FILE, DEFAULT_WEIGHTS_DIR, Generator
    gen = Generator.load(weights, device)
    full = MotionClip.load(SHARED / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz")
    n_train = int(math.floor(full.num_frames * (1 - holdout)))
    tr = full.slice(0, n_train)
    target = jerk(forward_kinematics(tr.poses, tr.trans))
    target_tr = float(np.linalg.norm(np.diff(tr.trans, axis=0), axis=1).mean() * FPS)
    w = load_audio(SHARED / "dev_audio" / "beat2_scott_2_2.wav")
    res_tr = {}
    gen.smooth_sigma = 2.0
    for ts in TRANS_SIGMAS:
        gen.trans_sigma = ts
        c = gen.generate(w, SAMPLE_RATE, seed=0, steps=steps, guidance=guidance, style=style)
        res_tr[ts] = float(np.linalg.norm(np.diff(c.trans, axis=0), axis=1).mean() * FPS)
    gen.trans_sigma = best_ts = min(TRANS_SIGMAS, key=lambda ts: abs(math.log(res_tr[ts] / target_tr)))
    res = {}
    for sg in sigmas:
        gen.smooth_sigma = sg
        c = gen.generate(w, SAMPLE_RATE, seed=0, steps=steps, guidance=guidance, style=style)
        pos = forward_kinematics(c.poses, c.trans)
        env = rms_envelope(w)
        res[sg] = {"jerk": jerk(pos), "speed": upper_speed(pos), "lip_r": lip_r(c, env), "exp_r": exp_r(c, env)}
    best = min(sigmas, key=lambda sg: abs(math.log(res[sg]["jerk"] / target)))
    out = {"target_train_jerk": target, "by_sigma": res, "chosen": best, "target_train_trans_speed": target_tr,
           "trans_speed_by_trans_sigma": res_tr, "chosen_trans_sigma": best_ts}
    if write:
        p = Path(weights or DEFAULT_WEIGHTS_DIR) / CONFIG_FILE
        meta = json.loads(p.read_text())
        meta["smooth_sigma"] = best
        meta["trans_sigma"] = best_ts
        meta["smooth_sigma_selection"] = {
            "rule": "on dev_audio/beat2_scott_2_2: trans_sigma -> root speed closest to the training part of the "
                    "capture, then smooth_sigma -> jerk closest to the training part's jerk",
            "target_train_jerk": target, "by_sigma": {str(k): v for k, v in res.items()},
            "target_train_trans_speed": target_tr, "trans_speed_by_trans_sigma": {str(k): v for k, v in res_tr.items()}}
        p.write_text(json.dumps(meta, indent=1))
    return out


def evaluate(weights: str | None, out: Path, seeds: list[int], steps: int, guidance: float, style: str,
             holdout: float = 0.2, device: str = "cpu", smooth_sigma: float | None = None) -> dict:
    """Held-out segment + every dev_audio clip; writes metrics.json and PNGs into ``out``."""
    from ..generate import Generator
    out.mkdir(parents=True, exist_ok=True)
    gen = Generator.load(weights, device)
    if smooth_sigma is not None:
        gen.smooth_sigma = smooth_sigma
        gen.trans_sigma = smooth_sigma
    full = MotionClip.load(SHARED / "beat2" / "smplxflame_30" / "2_scott_0_1_1.npz")
    wave_full = load_audio(SHARED / "beat2" / "wave16k" / "2_scott_0_1_1.wav")
    pos_full = forward_kinematics(full.poses, full.trans)
    ref_speed = mean_joint_speed(pos_full)
    n_train = int(math.floor(full.num_frames * (1 - holdout)))
    train_pos = pos_full[:n_train]
    accel = np.linalg.norm(np.diff(pos_full[:, list(UPPER_BODY)], n=2, axis=0), axis=-1).mean(1) * FPS ** 2
    accel_p99 = float(np.percentile(accel, 99))
    report = {"settings": {"seeds": seeds, "steps": steps, "guidance": guidance, "style": style,
                           "holdout": holdout, "weights": str(weights or "bundled"),
                           "smooth_sigma": gen.smooth_sigma, "trans_sigma": gen.trans_sigma},
              "capture_full": capture_reference(SHARED)}

    # ---- held-out segment
    ho_clip = full.slice(n_train, full.num_frames)
    ho_wave = wave_full[int(round(n_train / FPS * SAMPLE_RATE)):]
    ho_wave_m = ho_wave[: int(round(ho_clip.num_frames / FPS * SAMPLE_RATE))]  # audio over the motion span
    cap = core_metrics(ho_clip, ho_wave_m, ref_speed)
    cap["novelty"] = novelty(forward_kinematics(ho_clip.poses, ho_clip.trans), train_pos)
    takes, t_gen = [], []
    for s in seeds:
        t0 = time.perf_counter()
        takes.append(gen.generate(ho_wave_m, SAMPLE_RATE, seed=s, steps=steps, guidance=guidance, style=style))
        t_gen.append(time.perf_counter() - t0)
    per_seed = [core_metrics(c, ho_wave_m, ref_speed) for c in takes]
    pos_takes = [forward_kinematics(c.poses, c.trans) for c in takes]
    gm = {k: float(np.mean([m[k] for m in per_seed])) for k in ("lip_r", "exp_r", "BC", "jerk", "speed")}
    gm["lip_r_per_seed"] = [m["lip_r"] for m in per_seed]
    gm["silence"] = per_seed[0]["silence"]
    gm["diversity"] = diversity(pos_takes)
    gm["novelty"] = float(np.mean([novelty(p, train_pos) for p in pos_takes]))
    gm["speed_ratio"] = gm["speed"] / cap["speed"]
    gm["jerk_ratio"] = gm["jerk"] / cap["jerk"]
    gm["seconds_per_take"] = float(np.mean(t_gen))
    T = takes[0].num_frames
    gm["border"] = border_check(gen, ho_wave_m, takes[0], T // 3, T // 3 + 60, seeds[0] + 100, steps, style,
                                accel_p99)
    report["heldout"] = {"capture": cap, "generated": gm, "frames": T}
    env = rms_envelope(ho_wave_m)
    plot_jaw(out / "heldout_jaw.png", env, {"capture": np.abs(ho_clip.poses[:, 66]),
                                            **{f"seed {s}": np.abs(c.poses[:, 66]) for s, c in zip(seeds, takes)}},
             "held-out 20 % of 2_scott_0_1_1: jaw opening over RMS")
    plot_speed(out / "heldout_speed.png", {"capture": forward_kinematics(ho_clip.poses, ho_clip.trans),
                                           f"seed {seeds[0]}": pos_takes[0]}, "held-out: upper-body speed")

    # ---- dev audio (no motion ground truth)
    report["dev_audio"] = {}
    for wav in sorted((SHARED / "dev_audio").glob("*.wav")):
        w = load_audio(wav)
        c = gen.generate(w, SAMPLE_RATE, seed=seeds[0], steps=steps, guidance=guidance, style=style)
        m = core_metrics(c, w, ref_speed)
        m["speed_ratio"] = m["speed"] / cap["speed"]
        m["jerk_ratio"] = m["jerk"] / cap["jerk"]
        report["dev_audio"][wav.stem] = m
        plot_jaw(out / f"dev_{wav.stem}_jaw.png", rms_envelope(w), {f"seed {seeds[0]}": np.abs(c.poses[:, 66])},
                 f"{wav.stem}: generated jaw opening over RMS")
    # ---- lip sync: phoneme contrast + jaw r, with the ridge-regression baseline row
    from .lipsync_eval import lipsync_report
    report["lipsync"] = lipsync_report(gen, seeds, steps, guidance, style, holdout, out)
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    return report


def format_table(rep: dict) -> str:
    """Markdown table of the main numbers."""
    rows = ["| clip | lip_r | exp_r | BC | jerk (m/s³) | speed (m/s) | speed / held-out cap. | jerk / held-out cap."
            " | speed / full cap. | jerk / full cap. |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    full = rep["capture_full"]["own_audio"]

    def row(name, m, ratios=True):
        sr = f"{m.get('speed_ratio', float('nan')):.2f}" if ratios else "–"
        jr = f"{m.get('jerk_ratio', float('nan')):.2f}" if ratios else "–"
        rows.append(f"| {name} | {m['lip_r']:.3f} | {m['exp_r']:.3f} | {m['BC']:.3f} | {m['jerk']:.1f} | "
                    f"{m['speed']:.3f} | {sr} | {jr} | {m['speed'] / full['speed']:.2f} | {m['jerk'] / full['jerk']:.2f} |")

    row("capture, full 63.5 s", rep["capture_full"]["own_audio"], False)
    w = rep["capture_full"]["wrong_audio"]
    rows.append(f"| capture, wrong audio | {w['lip_r']:.3f} | {w['exp_r']:.3f} | {w['BC']:.3f} | | | | | | |")
    if "heldout" in rep:
        row("capture, held-out 20 %", rep["heldout"]["capture"], False)
        row(f"generated, held-out (mean of {len(rep['settings']['seeds'])} seeds)", rep["heldout"]["generated"])
        for k, m in rep.get("dev_audio", {}).items():
            row(f"generated, {k}", m)
        g = rep["heldout"]["generated"]
        c = rep["heldout"]["capture"]
        b = g["border"]
        rows += ["", f"held-out extras: diversity across seeds {g['diversity']:.3f} m; novelty (nearest training "
                     f"window) generated {g['novelty']:.3f} m vs real held-out {c['novelty']:.3f} m; "
                     f"silence: speed {g['silence']['speed_silent']:.3f} (capture {c['silence']['speed_silent']:.3f}) m/s, "
                     f"jaw {g['silence']['jaw_silent']:.3f} (capture {c['silence']['jaw_silent']:.3f}) rad vs speech "
                     f"jaw {g['silence']['jaw_speech']:.3f} (capture {c['silence']['jaw_speech']:.3f}) rad; "
                     f"in-painting frames {b['range']}: outside bit-identical {b['outside_bit_identical']}, border "
                     f"accel {max(b['border_accel_m_s2']):.2f} m/s² vs capture p99 {b['capture_accel_p99_m_s2']:.2f}; "
                     f"{g['seconds_per_take']:.2f} s per {rep['heldout']['frames'] / 30:.1f} s take"]
    if "lipsync" in rep:
        from .lipsync_eval import format_lipsync
        rows += ["", format_lipsync(rep["lipsync"])]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.evaluate", description="CoSpeech evaluator (DESIGN.md metrics)")
    ap.add_argument("--weights", default=None, help="weights folder (default bundled)")
    ap.add_argument("--out", default="out/eval", help="folder for metrics.json and PNGs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--style", default="moderate")
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--capture-only", action="store_true", help="only the capture's own numbers")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smooth-sigma", type=float, default=None, help="override the weights' smooth_sigma")
    ap.add_argument("--tune-smoothing", type=float, nargs="*", default=None,
                    help="only choose smooth_sigma among these values (see tune_smoothing)")
    ap.add_argument("--write", action="store_true", help="with --tune-smoothing: store the choice in the weights json")
    args = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:  # ONNX Runtime backend (Generator.load backend="auto")
        pass
    if not (SHARED / "beat2").is_dir():
        print(f"error: evaluation data not found at {SHARED}")
        return 2
    if args.tune_smoothing is not None:
        sig = args.tune_smoothing or [0.0, 1.0, 1.5, 2.0, 3.0, 4.0]
        print(json.dumps(tune_smoothing(args.weights, sig, args.steps, args.guidance, args.style, args.holdout,
                                        args.write), indent=1))
        return 0
    if args.capture_only:
        rep = {"capture_full": capture_reference(SHARED)}
    else:
        rep = evaluate(args.weights, Path(args.out), args.seeds, args.steps, args.guidance, args.style, args.holdout,
                       smooth_sigma=args.smooth_sigma)
    print(json.dumps(rep, indent=1))
    print(format_table(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
