"""Artist dials (model/adjust.py) on a real capture (or a synthetic clip
when ../shared is absent): manifold-correct intensity, smoothing, locks."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import BEAT2_NPZ
from model.adjust import GESTURE, HEAD, MOUTH, PRESETS, Adjustments, adjust
from model.motion import MotionClip


@pytest.fixture(scope="module")
def clip():
    if BEAT2_NPZ.exists():
        return MotionClip.load(BEAT2_NPZ).slice(0, 600)
    rng = np.random.default_rng(0)
    return MotionClip(np.cumsum(rng.normal(0, .01, (600, 165)), 0).astype(np.float32),
                      rng.normal(0, 1, (600, 100)).astype(np.float32), np.zeros((600, 3), np.float32), 30.0)


def _rel_angles(rv):
    rot = Rotation.from_rotvec(rv.astype(np.float64))
    return np.linalg.norm((rot.mean().inv() * rot).as_rotvec(), axis=1), rot.mean()


def test_identity_is_bit_identical(clip):
    out = adjust(clip, Adjustments())
    assert np.array_equal(out.poses, clip.poses) and np.array_equal(out.expressions, clip.expressions)
    assert np.array_equal(out.trans, clip.trans)


def test_zero_holds_the_mean_and_200_doubles_the_angle(clip):
    j = HEAD[1]
    rv = clip.poses[:, 3 * j:3 * j + 3]
    ang, mean = _rel_angles(rv)
    zero = adjust(clip, Adjustments(head=0)).poses[:, 3 * j:3 * j + 3]
    assert np.allclose(Rotation.from_rotvec(zero.astype(np.float64)).as_matrix(), mean.as_matrix()[None], atol=1e-5)
    double = adjust(clip, Adjustments(head=200)).poses[:, 3 * j:3 * j + 3]
    rel2 = (mean.inv() * Rotation.from_rotvec(double.astype(np.float64))).as_rotvec()
    assert np.abs(np.linalg.norm(rel2, axis=1) - 2 * ang).max() < 1e-4
    # other parts untouched
    other = adjust(clip, Adjustments(head=200))
    g = GESTURE[5]
    assert np.array_equal(other.poses[:, 3 * g:3 * g + 3], clip.poses[:, 3 * g:3 * g + 3])


def _jerk(x):
    return float(np.abs(np.diff(x, n=3, axis=0)).mean())


def test_smoothing_lowers_jerk_monotonically(clip):
    j = MOUTH[0]
    jerks = [_jerk(adjust(clip, Adjustments(smooth_face=s)).poses[:, 3 * j:3 * j + 3]) for s in (0, 0.5, 1, 2, 4)]
    assert all(a > b for a, b in zip(jerks, jerks[1:])), jerks


def test_locked_frames_stay_byte_identical_and_presets_are_valid(clip):
    keep = np.zeros(clip.num_frames, bool)
    keep[100:140] = True
    out = adjust(clip, PRESETS["CARTOON"], keep=keep)
    assert np.array_equal(out.poses[keep], clip.poses[keep]) and not np.array_equal(out.poses, clip.poses)
    assert all(p.clamped() == p for p in PRESETS.values())
    assert Adjustments(mouth=500, smooth_body=-3).clamped() == Adjustments(mouth=200, smooth_body=0)


def test_closure_emphasis_follows_the_audio_cue(clip):
    """Lip Closure scales the jaw toward closed by amount x cue (geodesic: the
    axis is kept), leaves every other joint alone, and does nothing without a cue."""
    j = MOUTH[0]
    jaw = clip.poses[:, 3 * j:3 * j + 3].astype(np.float64)
    cue = np.zeros(clip.num_frames)
    cue[100:200] = 1.0
    cue[300:400] = 0.5
    out = adjust(clip, Adjustments(closure=50), cue=cue)
    new = out.poses[:, 3 * j:3 * j + 3].astype(np.float64)
    np.testing.assert_allclose(new[100:200], 0.5 * jaw[100:200], atol=1e-6)
    np.testing.assert_allclose(new[300:400], 0.75 * jaw[300:400], atol=1e-6)
    np.testing.assert_allclose(new[:100], jaw[:100], atol=1e-7)
    others = np.ones(165, bool)
    others[3 * j:3 * j + 3] = False
    assert np.array_equal(out.poses[:, others], clip.poses[:, others])
    full = adjust(clip, Adjustments(closure=100), cue=cue).poses[100:200, 3 * j:3 * j + 3]
    assert np.abs(full).max() < 1e-7                                       # fully shut where the cue is 1
    assert np.array_equal(adjust(clip, Adjustments(closure=100)).poses, clip.poses)   # no cue: no effect


def test_closure_raises_phoneme_contrast_on_a_dev_clip():
    """The issue's target: on a dev clip (other speaker, PocketSphinx phones)
    Lip Closure 50 % raises the phoneme contrast of a generated take, mean of
    3 seeds, without raising jaw jerk by more than 20 % -- with the cue the
    add-on stores for the take (``Generator.closure_cue``)."""
    pytest.importorskip("pocketsphinx")
    from conftest import DEV_AUDIO
    wav = DEV_AUDIO / "codetalker_man.wav"
    if not wav.exists():
        pytest.skip(f"{wav} not found (../shared/data/dev_audio)")
    from model.features import SAMPLE_RATE, load_audio
    from model.generate import Generator
    from model.training.lipsync_eval import jaw_jerk
    from model.phones import allphone, jaw_opening, phoneme_contrast
    w = load_audio(wav)
    phones = allphone(w)
    gen = Generator.load(None, backend="onnx")
    clips, cues = [], []
    for s in (0, 1, 2):
        clips.append(gen.generate(w, SAMPLE_RATE, seed=s, steps=8, guidance=2.0))
        cues.append(gen.closure_cue)
    before = [jaw_opening(c.poses) for c in clips]
    after = [jaw_opening(adjust(c, Adjustments(closure=50), cue=cue).poses) for c, cue in zip(clips, cues)]
    c0 = np.mean([phoneme_contrast(j, phones) for j in before])
    c1 = np.mean([phoneme_contrast(j, phones) for j in after])
    j0, j1 = np.mean([jaw_jerk(j) for j in before]), np.mean([jaw_jerk(j) for j in after])
    print(f"codetalker_man: contrast {c0:.2f} -> {c1:.2f}, jaw jerk {j0:.1f} -> {j1:.1f}")
    # measured: 2.58 -> 2.70, jaw jerk +5 % (phone-timed cue, P B M closures already in the take);
    # with the energy cue it was 2.58 -> 2.55 (+13 %), before the phone-timed jaw 2.20 -> 2.27
    assert c1 > c0 + 0.05 and j1 <= 1.2 * j0