"""The mouth rests in digital silence (model/silence.py), with the model run
end to end on real speech with a silent gap (no torch needed: ONNX Runtime)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from model.motion import MotionClip
from model.silence import JAW, rest_mouth, silence_weight

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"


def test_silence_weight_levels():
    w = silence_weight(np.r_[np.full(20, -20.0), np.full(20, -90.0), np.full(20, -20.0)])
    assert w[:15].max() == 0 and w[-15:].max() == 0 and np.all(w[25:35] == 1)
    assert np.all((w >= 0) & (w <= 1))


def test_rest_mouth_scales_jaw_and_expressions_and_keeps_known_frames():
    rng = np.random.default_rng(0)
    clip = MotionClip(rng.normal(0, .1, (10, 165)).astype(np.float32),
                      rng.normal(0, 1, (10, 100)).astype(np.float32), np.zeros((10, 3), np.float32), 30.0)
    orig = clip.poses.copy(), clip.expressions.copy()
    w = np.r_[np.zeros(3), np.full(4, 1.0), np.full(3, .5)].astype(np.float32)
    keep = np.zeros(10, bool)
    keep[4] = True
    rest_mouth(clip, w, keep=keep)
    j = slice(3 * JAW, 3 * JAW + 3)
    assert np.array_equal(clip.poses[:3], orig[0][:3]) and np.array_equal(clip.poses[4], orig[0][4])
    assert np.all(clip.poses[[3, 5, 6], j] == 0) and np.all(clip.expressions[[3, 5, 6]] == 0)
    assert np.allclose(clip.poses[7:, j], orig[0][7:, j] * .5)
    other = np.ones(165, bool)
    other[j] = False
    assert np.array_equal(clip.poses[:, other], orig[0][:, other])   # only the jaw


def test_generated_jaw_rests_in_digital_silence():
    pytest.importorskip("onnxruntime")
    from model.features import SAMPLE_RATE, load_audio
    from model.generate import Generator
    speech = load_audio(ARCTIC)
    wave = np.r_[speech, np.zeros(3 * SAMPLE_RATE, np.float32), speech]
    clip = Generator.load(backend="onnx").generate(wave, SAMPLE_RATE, seed=0, steps=4)
    gap = slice(int((len(speech) / SAMPLE_RATE + 0.5) * 30), int((len(speech) / SAMPLE_RATE + 2.5) * 30))
    jaw = np.linalg.norm(clip.poses[:, 3 * JAW:3 * JAW + 3], axis=1)
    assert jaw[gap].max() < 1e-6 and np.abs(clip.expressions[gap]).max() < 1e-6
    assert jaw[:60].std() > 1e-3, "the mouth must still move during speech"
