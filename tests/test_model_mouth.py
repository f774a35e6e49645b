"""The ARKit mouth: FACEGOOD's ARKit table, phone-timed closures, the clip's
``arkit_mouth`` through npz, resampling, mirroring, the dials and the ARKit bake."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED_DATA
from model.adjust import Adjustments, adjust
from model.arkit import ARKIT_NAMES, arkit_weights, viseme_weights
from model.motion import ARKIT_MOUTH_NAMES, MotionClip
from model.mouth import close_lips, phone_closures
from model.phones import VISEMES
from model.representation import MOUTH_MIRROR_PERM, Normaliser, clip_to_frames, mirror_clip

FACEGOOD = SHARED_DATA / "facegood"
I = {n: i for i, n in enumerate(ARKIT_MOUTH_NAMES)}


def _clip(T=90, seed=0):
    rng = np.random.default_rng(seed)
    return MotionClip(rng.normal(0, .02, (T, 165)), rng.normal(0, .5, (T, 100)), rng.normal(0, .01, (T, 3)), 30.0,
                      arkit_mouth=rng.uniform(0, 0.6, (T, len(ARKIT_MOUTH_NAMES))))


def test_names_are_arkit_mouth_shapes_in_live_link_order():
    assert len(ARKIT_MOUTH_NAMES) == 27
    pos = [ARKIT_NAMES.index(n) for n in ARKIT_MOUTH_NAMES]
    assert pos == sorted(pos)
    assert all(n.startswith(("jaw", "mouth")) for n in ARKIT_MOUTH_NAMES)
    assert [ARKIT_MOUTH_NAMES[i] for i in MOUTH_MIRROR_PERM][I["mouthSmileLeft"]] == "mouthSmileRight"


@pytest.mark.skipif(not FACEGOOD.is_dir(), reason="../shared/data/facegood is absent")
def test_facegood_table_reads_the_valid_rows_with_max():
    from model.training.facegood import arkit_table, load_takes
    table = arkit_table(FACEGOOD)
    assert set(table) == set(ARKIT_MOUTH_NAMES)
    assert table["jawOpen"] == ["mouth_stretch_c"]
    assert table["mouthFunnel"] == ["mouth_funnel_dl", "mouth_funnel_dr", "mouth_funnel_ul", "mouth_funnel_ur"]
    take = load_takes(FACEGOOD, exclude=(), only=("1114_3_16",))[0]
    with np.load(FACEGOOD / "1114_3_16.npz") as d:
        names = [str(n) for n in d["names"]]
        w = d["weights"]
    funnel = w[:, [names.index(n) for n in table["mouthFunnel"]]].max(1)
    assert np.array_equal(take.arkit_mouth[:, I["mouthFunnel"]], funnel)
    assert np.array_equal(take.arkit_mouth[:, I["jawOpen"]], take.jaw_open)
    assert take.arkit_mouth[:, I["jawOpen"]].std() > 0.05      # the take animates the jaw


def test_clip_carries_the_mouth_through_npz_resample_slice_and_mirror(tmp_path):
    c = _clip()
    c.save(tmp_path / "m.npz")
    back = MotionClip.load(tmp_path / "m.npz")
    assert np.array_equal(back.arkit_mouth, c.arkit_mouth)
    r = c.resample(60.0)
    assert r.arkit_mouth.shape == (180, 27)
    assert np.allclose(r.arkit_mouth[::2], c.arkit_mouth, atol=1e-6)
    assert np.array_equal(c.slice(10, 20).arkit_mouth, c.arkit_mouth[10:20])
    m = mirror_clip(c)
    assert np.array_equal(m.arkit_mouth[:, I["mouthSmileLeft"]], c.arkit_mouth[:, I["mouthSmileRight"]])
    assert np.array_equal(m.arkit_mouth[:, I["jawOpen"]], c.arkit_mouth[:, I["jawOpen"]])


def test_normaliser_ignores_missing_mouth_and_round_trips_it():
    with_mouth, without = _clip(seed=1), _clip(seed=2)
    without.arkit_mouth = None
    frames = np.concatenate([clip_to_frames(with_mouth), clip_to_frames(without)])
    norm = Normaliser.fit(frames)
    assert np.all(np.isfinite(norm.mean)) and np.all(norm.std > 0)
    assert np.all(norm.encode(without)[:, -27:] == 0.0)            # no data: the mean
    dec = norm.decode(norm.encode(with_mouth))
    assert np.allclose(dec.arkit_mouth, with_mouth.arkit_mouth, atol=1e-5)


def test_bilabials_close_the_lips_and_labiodentals_raise_the_lower_lip():
    T = 30
    vis = np.zeros((T, len(VISEMES)))
    vis[:, VISEMES.index("aa")] = 1
    vis[10:12] = 0
    vis[10:12, VISEMES.index("PP")] = 1           # a 2-frame /b/
    vis[20:22] = 0
    vis[20:22, VISEMES.index("FF")] = 1           # a 2-frame /f/
    c, f = phone_closures(vis)
    assert c[10] == pytest.approx(1.0, abs=1e-6) and c[0] < 0.01 and c[20] < 0.01
    assert f[20] == pytest.approx(1.0, abs=1e-6) and f[10] < 0.01
    mouth = np.zeros((T, 27), np.float32)
    mouth[:, I["jawOpen"]] = 0.5
    mouth[:, I["mouthFunnel"]] = 0.4
    out = close_lips(mouth, c, f)
    assert out[10, I["mouthClose"]] == pytest.approx(out[10, I["jawOpen"]], abs=1e-6)   # lips meet
    assert out[10, I["jawOpen"]] < 0.2 and out[10, I["mouthFunnel"]] < 0.01
    assert out[10, I["mouthPressLeft"]] >= 0.5 - 1e-6
    assert out[20, I["mouthRollLower"]] >= 0.6 - 1e-6 and out[20, I["jawOpen"]] < 0.3
    assert np.allclose(out[0], mouth[0]) and out.min() >= 0 and out.max() <= 1


def test_arkit_bake_uses_the_learned_mouth_and_the_dials_act_on_it():
    c = _clip()
    w = arkit_weights(c)
    cols = [ARKIT_NAMES.index(n) for n in ARKIT_MOUTH_NAMES]
    assert np.allclose(w[:, cols], c.arkit_mouth)
    vis = viseme_weights(w)                                       # visemes are explained from it
    assert vis.shape == (90, 15) and vis[:, 1:].sum() > 0
    half = adjust(c, Adjustments(mouth=50))
    assert np.allclose(half.arkit_mouth, c.arkit_mouth * 0.5, atol=1e-6)
    cue = np.zeros(90)
    cue[40:45] = 1.0
    closed = adjust(c, Adjustments(closure=100), cue=cue)
    assert np.all(closed.arkit_mouth[40:45, I["mouthPressLeft"]] >= 0.5 - 1e-6)
    assert np.allclose(closed.arkit_mouth[:30], c.arkit_mouth[:30])
    assert adjust(c, Adjustments()).arkit_mouth is not c.arkit_mouth      # identity: a copy, equal
    assert np.array_equal(adjust(c, Adjustments()).arkit_mouth, c.arkit_mouth)


def test_mouth_eval_contrasts_see_rounding_and_closure():
    """The report's rounding / closure contrasts (model/training/mouth_eval.py) move the
    right way on a mouth that rounds at UW and closes at M, and are 0 on a still one."""
    from model.phones import Phone
    from model.training.mouth_eval import lip_contrasts
    phones = [Phone(lab, 0.2 * i, 0.2 * i + 0.2) for i, lab in enumerate(["UW", "IY", "M", "AA"] * 5)]
    T = int(0.2 * len(phones) * 30)
    mouth = np.zeros((T, 27), np.float32)
    for p in phones:
        a, b = int(p.start * 30), int(p.end * 30)
        if p.label == "UW":
            mouth[a:b, I["mouthFunnel"]] = 0.6
        if p.label == "M":
            mouth[a:b, I["mouthPressLeft"]] = mouth[a:b, I["mouthPressRight"]] = 0.5
        if p.label == "AA":
            mouth[a:b, I["jawOpen"]] = 0.5
    c = lip_contrasts(mouth, phones)
    assert c["rounding"] > 1.0 and c["closure"] > 1.0 and c["jawOpen_contrast"] > 1.0
    still = lip_contrasts(np.zeros((T, 27), np.float32), phones)
    assert still["rounding"] == 0.0 and still["closure"] == 0.0
