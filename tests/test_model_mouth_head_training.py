"""Training the ARKit mouth head (needs PyTorch): the ridge branch equals
scikit-learn's ridge, the ONNX export equals PyTorch.  The shipped head at
generation time: tests/test_model_mouth_head.py (torch-free)."""
import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import shutil

import numpy as np
import pytest

from model.mouth_head import HEAD_FILE, MouthHead

torch = pytest.importorskip("torch", reason="training and export need PyTorch")
from model.training.lipsync_eval import _with_context, ridge  # noqa: E402
from model.training.mouth_head import (MAX_GAIN, amplitude_calibration, export, ridge_as_conv,  # noqa: E402
                                       train_head, write_calibration)



@pytest.fixture(scope="module")
def small_head():
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((300, 102)).astype(np.float32) for _ in range(2)]
    Y = [np.clip(0.3 + 0.2 * np.tanh(x[:, :27]), 0, 1).astype(np.float32) for x in X]
    torch.manual_seed(0)
    return X, Y, train_head(X, Y, seeds=1, epochs=1, hidden=16)


def test_ridge_branch_is_the_ridge_with_repeated_edges(small_head):
    X, Y, head = small_head
    w, b = ridge_as_conv(X, Y)
    want = ridge(np.concatenate([_with_context(x[:, :63], 4, None) for x in X]), np.concatenate(Y)).predict(
        _with_context(X[0][:, :63], 4, None))
    with torch.no_grad():
        got = head.ridge(torch.tensor(X[0][None, :, :63]).transpose(1, 2)).transpose(1, 2).numpy()[0]
    assert np.abs(got - want).max() < 1e-4            # edges included: replicate padding = repeated edge frames
    assert w.shape == (27, 63, 9)


def test_onnx_export_matches_torch(small_head, tmp_path):
    X, _Y, head = small_head
    path = export(head, tmp_path / HEAD_FILE, {"format": "test"})
    m = MouthHead(path)
    with torch.no_grad():
        ref = head(torch.tensor(X[1][None])).numpy()[0]
    assert np.abs(m.raw(X[1]) - ref).max() < 1e-4
    out = m(X[1])
    assert out.shape == (300, 27) and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="102"):
        m.raw(X[1][:, :63])
    long = np.concatenate([X[0]] * 30)                       # 9000 frames: three chunks
    whole = m.session.run(["arkit"], {"feats": long[None]})[0][0]
    assert np.abs(m.raw(long) - whole).max() < 1e-5          # chunked = one run on the whole take


def test_amplitude_calibration_restores_the_spread_of_held_out_takes(tmp_path):
    """Leave-one-take-out: a predictable opening shape (jawOpen) gets gain std(truth) /
    std(prediction) > 1; an opening shape no input predicts (mouthLowerDownLeft), a
    predictable lip shape (mouthFunnel: not amplified) and shapes the animation never
    moves keep gain 1; stored in the ONNX metadata, MouthHead applies it (graph unchanged)."""
    from model.motion import ARKIT_MOUTH_NAMES
    jaw, low, fun = (ARKIT_MOUTH_NAMES.index(n) for n in ("jawOpen", "mouthLowerDownLeft", "mouthFunnel"))
    rng = np.random.default_rng(1)
    X = [rng.standard_normal((400, 102)).astype(np.float32) for _ in range(3)]
    Y = []
    for x in X:
        y = np.zeros((400, 27), np.float32)
        y[:, jaw] = np.clip(0.3 + 0.25 * x[:, 0], 0, 1)               # predictable from the input
        y[:, fun] = np.clip(0.3 + 0.25 * x[:, 1], 0, 1)               # predictable, but a lip shape
        y[:, low] = np.clip(0.3 + 0.25 * rng.standard_normal(400), 0, 1)  # noise: nothing predicts it
        Y.append(y)                                                  # the other 24 never move
    torch.manual_seed(0)
    cal = amplitude_calibration(X, Y, seeds=1, epochs=2)
    g = np.array(cal["gain"])
    assert 1.0 < g[jaw] <= MAX_GAIN and cal["per_shape"]["mouthFunnel"]["r"] > 0.5
    assert np.all(np.delete(g, jaw) == 1.0)
    head = train_head(X, Y, seeds=1, epochs=1, hidden=16)
    path = export(head, tmp_path / HEAD_FILE, {"format": "test"})
    plain = MouthHead(path)
    write_calibration(path, cal)
    write_calibration(path, cal)                                      # replaces, does not duplicate
    m = MouthHead(path)
    assert m.metadata["format"] == "test"
    raw = m.raw(X[0])
    assert np.array_equal(raw, plain.raw(X[0]))                       # same graph
    c = np.array(cal["center"], np.float32)
    want = np.clip(c + g.astype(np.float32) * (raw - c), 0, 1)
    assert np.abs(m(X[0], sigma=0) - want).max() < 1e-6
    assert np.array_equal(plain(X[0], sigma=0), np.clip(raw, 0, 1))   # no calibration: as before
