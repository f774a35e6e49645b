"""The phonetic mouth term of the network (``NetConfig.mouth_phonetic``)."""
import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import pytest
import torch

from model.network import MOUTH_AUDIO_COLUMNS, CoSpeechNet, NetConfig
from model.representation import BODY_DIM, FRAME_DIM


def _inputs(B=2, T=30, A=63):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(B, T, FRAME_DIM, generator=g), torch.full((B,), 0.5), torch.randn(B, T, A, generator=g),
            torch.zeros(B, dtype=torch.long), torch.zeros(B, T, FRAME_DIM), torch.zeros(B, T))


def test_phonetic_mouth_reads_only_visemes_and_loudness():
    """Changing a log-mel column moves the face only through the trunk; with
    the trunk's face and ARKit mouth outputs zeroed, only the mouth columns move them, and
    dropped audio removes the mouth term."""
    torch.manual_seed(0)
    net = CoSpeechNet(NetConfig(d_model=32, n_layers=1, n_heads=2, audio_dim=63, visemes=True,
                                mouth_phonetic=True)).eval()
    with torch.no_grad():
        for head in (net.face_out, net.arkit_out):     # the trunk's face and ARKit mouth outputs
            head[1].weight.zero_()
            head[1].bias.zero_()
        x, t, a, s, k, m = _inputs()
        base = net(x, t, a, s, k, m)[..., BODY_DIM:]
        a_mel = a.clone()
        a_mel[..., :40] += 3.0                       # log-mel only: not a mouth column
        assert torch.allclose(net(x, t, a_mel, s, k, m)[..., BODY_DIM:], base, atol=1e-6)
        a_vis = a.clone()
        a_vis[..., MOUTH_AUDIO_COLUMNS[-1]] += 1.0         # a viseme column
        assert (net(x, t, a_vis, s, k, m)[..., BODY_DIM:] - base).abs().max() > 1e-3
        dropped = net(x, t, a, s, k, m, drop_audio=torch.ones(2, dtype=torch.bool))[..., BODY_DIM:]
        assert dropped.abs().max() < 1e-6


def test_phonetic_mouth_needs_visemes():
    with pytest.raises(ValueError, match="needs visemes"):
        CoSpeechNet(NetConfig(d_model=32, n_layers=1, n_heads=2, mouth_phonetic=True))


def test_phone_columns_reach_the_phonetic_mouth():
    """``NetConfig.phones``: the mouth term also reads the 39 ARPAbet columns
    (63..101) of the audio input; phones without visemes is refused."""
    torch.manual_seed(0)
    net = CoSpeechNet(NetConfig(d_model=32, n_layers=1, n_heads=2, audio_dim=102, visemes=True,
                                mouth_phonetic=True, phones=True)).eval()
    assert net.mouth_cols.tolist() == list(MOUTH_AUDIO_COLUMNS) + list(range(63, 102))
    with torch.no_grad():
        for head in (net.face_out, net.arkit_out):     # the trunk's face and ARKit mouth outputs
            head[1].weight.zero_()
            head[1].bias.zero_()
        x, t, a, s, k, m = _inputs(A=102)
        base = net(x, t, a, s, k, m)[..., BODY_DIM:]
        a_ph = a.clone()
        a_ph[..., 101] += 1.0                                       # the last phone column (ZH)
        assert (net(x, t, a_ph, s, k, m)[..., BODY_DIM:] - base).abs().max() > 1e-3
    with pytest.raises(ValueError, match="phones needs visemes"):
        CoSpeechNet(NetConfig(d_model=32, n_layers=1, n_heads=2, phones=True))
