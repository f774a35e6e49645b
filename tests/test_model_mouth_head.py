"""The shipped ARKit mouth head at generation time (ONNX Runtime, no PyTorch:
also run in the bpy 5.2 environment): it drives every take's mouth, a corrupt
file is a WeightsError, and the phone-timed closures shut the SMPL-X jaw on
P B M.  Training and export: tests/test_model_mouth_head_training.py."""
import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import shutil

import numpy as np
import pytest

from model import generate as G
from model.features import load_audio
from model.generate import Generator, WeightsError
from model.motion import ARKIT_MOUTH_NAMES
from model.mouth_head import HEAD_FILE

BUNDLED = pathlib.Path(G.DEFAULT_WEIGHTS_DIR)
DEMO = pathlib.Path(__file__).resolve().parents[1] / "tools" / "demo_audio" / "arctic_a0007.wav"
J = ARKIT_MOUTH_NAMES.index("jawOpen")


@pytest.mark.skipif(not (BUNDLED / HEAD_FILE).is_file(), reason="no bundled mouth_head.onnx")
def test_bundled_head_drives_the_mouth_of_every_seed():
    gen = Generator.load(backend="onnx")
    assert gen.mouth_head is not None
    wave = load_audio(DEMO)[:16000 * 2]
    a, b = (gen.generate(wave, seed=s, steps=2) for s in (0, 1))
    assert not np.allclose(a.poses, b.poses)                  # the body is sampled ...
    assert np.array_equal(a.arkit_mouth, b.arkit_mouth)       # ... the mouth is the head's, deterministic
    assert a.arkit_mouth[:, J].std() > 0.05                   # the jaw opens and closes on speech
    head, gen.mouth_head = gen.mouth_head, None
    sampled = gen.generate(wave, seed=0, steps=2)
    gen.mouth_head = head
    assert np.array_equal(sampled.poses, a.poses)             # the head changes nothing but the mouth
    assert not np.allclose(sampled.arkit_mouth, a.arkit_mouth)


@pytest.mark.skipif(not (BUNDLED / HEAD_FILE).is_file(), reason="no bundled mouth_head.onnx")
def test_corrupt_head_is_a_weights_error(tmp_path):
    for f in (G.CONFIG_FILE, G.ONNX_FILE):
        shutil.copy(BUNDLED / f, tmp_path / f)
    (tmp_path / HEAD_FILE).write_bytes(b"not an onnx graph")
    with pytest.raises(WeightsError, match="mouth head"):
        Generator.load(str(tmp_path), backend="onnx")


def test_phone_timed_closures_shut_the_smplx_jaw_on_bilabials():
    """On real speech (the bundled demo clip, 4 s) the take's jaw at the decoded
    P B M centres is closer to shut than the network's own jaw, vowels keep
    theirs, and the take's Lip Closure cue peaks there."""
    pytest.importorskip("pocketsphinx")
    from model.phones import BILABIALS, OPEN_VOWELS, allphone, jaw_opening
    gen = Generator.load(backend="onnx")
    wave = load_audio(DEMO)
    take = gen.generate(wave, seed=0, steps=4)
    cue = gen.closure_cue
    gen.phone_shapes = False
    own = gen.generate(wave, seed=0, steps=4)
    gen.phone_shapes = True
    phones = allphone(wave)
    at = {k: [min(int(p.centre * 30), take.num_frames - 1) for p in phones if p.label in labels]
          for k, labels in (("pbm", BILABIALS), ("open", OPEN_VOWELS))}
    assert len(at["pbm"]) >= 2 and len(at["open"]) >= 3
    j, j0 = jaw_opening(take.poses), jaw_opening(own.poses)
    assert j[at["pbm"]].mean() < 0.6 * j0[at["pbm"]].mean()          # factor 1 - 0.7 at the centre
    assert j[at["open"]].mean() > 0.85 * j0[at["open"]].mean()       # a vowel next to a /b/ closes a little
    assert cue.shape == (take.num_frames,) and cue[at["pbm"]].mean() > 0.8 > cue[at["open"]].mean()
    assert np.array_equal(np.delete(take.poses, np.s_[66:69], 1), np.delete(own.poses, np.s_[66:69], 1))


@pytest.mark.skipif(not (BUNDLED / HEAD_FILE).is_file(), reason="no bundled mouth_head.onnx")
def test_bundled_head_opens_open_vowels_with_the_animations_spread():
    """The bundled head carries its leave-one-take-out amplitude (jawOpen gain > 1.2,
    measured by model.training.mouth_head); on real speech (the demo clip) the
    jaw at the decoded open vowels opens wider than the head's MSE output would."""
    pytest.importorskip("pocketsphinx")
    from model.features import network_features
    from model.mouth_head import load_head
    from model.phones import OPEN_VOWELS, allphone
    head = load_head(BUNDLED)
    assert head.gain.shape == (27,) and head.gain[J] > 1.2 and head.gain.min() >= 1.0
    wave = load_audio(DEMO)
    feats = network_features(wave, visemes=True, phones=True)[1]
    at = [min(int(p.centre * 30), len(feats) - 1) for p in allphone(wave) if p.label in OPEN_VOWELS]
    assert len(at) >= 3
    calibrated, mse = head(feats)[:, J], np.clip(head.raw(feats)[:, J], 0, 1)
    assert calibrated[at].mean() > 1.15 * mse[at].mean()
