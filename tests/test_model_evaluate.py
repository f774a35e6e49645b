import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import numpy as np
import pytest

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "beat2").is_dir() or not (SHARED / "dev_audio").is_dir(),
                    reason=f"BEAT2 capture / dev_audio not found at {SHARED}")
def test_capture_reproduces_design_numbers():
    """DESIGN.md: lip_r 0.29, exp_r 0.22, BC 0.36, jerk 65, speed 0.26; wrong audio lip_r ~ 0."""
    from model.training.evaluate import capture_reference
    ref = capture_reference(SHARED)
    own, wrong = ref["own_audio"], ref["wrong_audio"]
    assert abs(own["lip_r"] - 0.29) < 0.03
    assert abs(own["exp_r"] - 0.22) < 0.03
    assert abs(own["BC"] - 0.36) < 0.03
    assert abs(own["jerk"] - 65) < 5
    assert abs(own["speed"] - 0.26) < 0.02
    assert abs(wrong["lip_r"]) < 0.05 and abs(wrong["exp_r"]) < 0.05


def test_best_lag_r_finds_shift():
    from model.training.evaluate import best_lag_r
    rng = np.random.default_rng(0)
    env = rng.standard_normal(500)
    sig = np.roll(env, 2)  # signal lags the audio by 2 frames
    r, lag = best_lag_r(sig, env)
    assert lag == 2 and r > 0.99
