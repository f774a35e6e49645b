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
from model.training.mouth_head import export, ridge_as_conv, train_head  # noqa: E402



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
