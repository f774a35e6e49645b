import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # noqa: E401,E702

import json

import numpy as np
import pytest
import torch

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not (SHARED / "beat2" / "smplxflame_30").is_dir(),
                                reason=f"BEAT2 training data not found at {SHARED / 'beat2'}")


def _args(tmp, steps, resume=False):
    from model.training.train import build_parser
    return build_parser().parse_args([
        "--data", str(SHARED / "beat2"), "--out", str(tmp / "w"), "--ckpt", str(tmp / "ckpt.pt"),
        "--steps", str(steps), "--batch", "8", "--window", "60", "--overlap", "12", "--d-model", "32",
        "--layers", "1", "--heads", "2", "--lr", "3e-3", "--stretch", "1.0", "--ckpt-every", "1000",
        "--threads", "1"] + (["--resume"] if resume else []))


def test_tiny_training_run_loss_falls_and_resumes(tmp_path):
    from model.generate import Generator
    from model.training.train import train
    torch.set_num_threads(1)
    info = train(_args(tmp_path, 60))
    st = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    losses = st["losses"].numpy()
    assert len(losses) == 60
    assert losses[-15:].mean() < 0.93 * losses[:15].mean(), losses
    meta = json.loads((tmp_path / "w" / "cospeech.json").read_text())
    assert meta["training"]["holdout"] == 0.2 and meta["training"]["sources"] == ["2_scott_0_1_1"]
    assert (tmp_path / "w" / "loss_curve.png").is_file()
    g = Generator.load(str(tmp_path / "w"), "cpu")
    clip = g.generate(np.zeros(16000, np.float32), seed=0, steps=2)
    assert clip.num_frames == 30 and np.isfinite(clip.poses).all()
    # resume: 40 steps + resume to 60 reproduces the straight 60-step run exactly
    tmp2 = tmp_path / "r"
    tmp2.mkdir()
    train(_args(tmp2, 40))
    a = _args(tmp2, 60, resume=True)
    train(a)
    st2 = torch.load(tmp2 / "ckpt.pt", weights_only=True)
    assert np.allclose(st2["losses"].numpy(), losses, rtol=1e-4, atol=1e-5)
    assert info["steps"] == 60


def _ddp_argv(tmp, batch=8, accum=1, extra=()):
    return ["--data", str(SHARED / "beat2"), "--out", str(tmp / "w"), "--ckpt", str(tmp / "ckpt.pt"),
            "--steps", "20", "--batch", str(batch), "--accum", str(accum), "--window", "60", "--overlap", "12",
            "--d-model", "32", "--layers", "1", "--heads", "2", "--lr", "3e-3", "--stretch", "1.0",
            "--ckpt-every", "1000", "--threads", "1", "--dropout", "0", "--device", "cpu", *extra]


def test_ddp_two_processes_match_one_process_with_the_whole_batch(tmp_path):
    """torchrun, 2 processes (gloo, CPU), 4 windows each = 1 process with the
    8-window batch (and = 1 process accumulating 2 x 4): the same loss curve
    over 20 steps, to float tolerance."""
    import os
    import subprocess
    import sys
    repo = pathlib.Path(__file__).resolve().parents[1]
    runs = {}
    for name, cmd in {
        "one": [sys.executable, "-m", "model.training.train"],
        "accum": [sys.executable, "-m", "model.training.train"],
        "ddp": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                str(29500 + os.getpid() % 1000), "-m", "model.training.train"],
    }.items():
        d = tmp_path / name
        d.mkdir()
        argv = _ddp_argv(d, accum=2 if name == "accum" else 1)
        res = subprocess.run(cmd + argv, cwd=repo, capture_output=True, text=True, timeout=900,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        runs[name] = torch.load(d / "ckpt.pt", weights_only=True)["losses"].numpy()
    assert len(runs["one"]) == len(runs["ddp"]) == 20
    np.testing.assert_allclose(runs["ddp"], runs["one"], rtol=1e-4)
    np.testing.assert_allclose(runs["accum"], runs["one"], rtol=1e-4)
    assert runs["one"][-5:].mean() < runs["one"][:5].mean()            # it trains
    meta = json.loads((tmp_path / "ddp" / "w" / "cospeech.json").read_text())
    assert meta["training"]["processes"] == 2
    # bit-exact resume under DDP: 12 steps, then resume to 20 == the straight 20-step DDP run
    d = tmp_path / "ddp_resume"
    d.mkdir()
    ddp = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(29500 + os.getpid() % 1000), "-m", "model.training.train"]
    for extra in (["--steps", "12"], ["--steps", "20", "--resume"]):
        argv = _ddp_argv(d) + extra
        res = subprocess.run(ddp + argv, cwd=repo, capture_output=True, text=True, timeout=900,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    resumed = torch.load(d / "ckpt.pt", weights_only=True)
    straight = torch.load(tmp_path / "ddp" / "ckpt.pt", weights_only=True)
    assert np.array_equal(resumed["losses"].numpy(), runs["ddp"])
    assert all(torch.equal(resumed["ema"][k], straight["ema"][k]) for k in straight["ema"])


def test_bf16_autocast_path_runs(tmp_path):
    """The CUDA mixed-precision path (bfloat16 autocast), exercised on the CPU."""
    from model.training.train import build_parser, train
    info = train(build_parser().parse_args(_ddp_argv(tmp_path, extra=("--bf16",))))
    losses = torch.load(tmp_path / "ckpt.pt", weights_only=True)["losses"].numpy()
    assert info["bf16"] and len(losses) == 20 and np.isfinite(losses).all()


def test_viseme_input_training_and_phone_dropout(tmp_path):
    """``--visemes --phones`` (+ ``--mouth-phonetic``): the network reads 48
    acoustic + 15 viseme + 39 ARPAbet columns, the weights say so, generation
    decodes phones for them, and phone dropout zeroes the phonetic columns of
    about the requested share of windows."""
    pytest.importorskip("pocketsphinx")
    from model.generate import Generator
    from model.training.train import Dataset, build_parser, train
    torch.set_num_threads(1)
    args = build_parser().parse_args(_ddp_argv(tmp_path, extra=("--visemes", "--viseme-dropout", "0.5",
                                                                "--mouth-phonetic", "--phones")))
    info = train(args)
    meta = json.loads((tmp_path / "w" / "cospeech.json").read_text())
    assert meta["net"]["visemes"] is True and meta["net"]["audio_dim"] == 102 and info["viseme_dropout"] == 0.5
    assert meta["net"]["mouth_phonetic"] is True and meta["net"]["phones"] is True
    g = Generator.load(str(tmp_path / "w"), "cpu", backend="torch")
    from model.features import load_audio
    clip = g.generate(load_audio(pathlib.Path(__file__).resolve().parents[1] / "tools" / "demo_audio"
                                 / "arctic_a0007.wav"), seed=0, steps=2)
    assert np.isfinite(clip.poses).all()
    ds = Dataset(SHARED / "beat2", 0.2, [1.0], 60, log=lambda *a: None, visemes=True, viseme_dropout=0.5,
                 phones=True)
    a = ds.batch(np.random.default_rng(0), 200)[1].numpy()
    dropped = (a[:, :, 48:].sum(axis=(1, 2)) == 0).mean()
    assert a.shape[-1] == 102 and 0.38 < dropped < 0.62
    kept = a[a[:, :, 48:].sum(axis=(1, 2)) > 0]
    assert np.all(kept[:, :, 48:63].sum(-1) == 1) and kept[:, :, 63:].sum() > 0    # one viseme per row, phones


def test_facegood_jaw_supervision_windows(tmp_path):
    """``--facegood``: a quarter of the windows come from the FACEGOOD takes
    (held-out take excluded), carry only the jaw's 6D and the ARKit mouth
    columns in the loss (BEAT2 windows everything but the ARKit mouth), and
    their jaw angles are calibrated to the capture's range."""
    pytest.importorskip("pocketsphinx")
    fg = SHARED / "facegood"
    if not fg.is_dir():
        pytest.skip(f"FACEGOOD takes not found at {fg}")
    from model.training.facegood import JAW_COLUMNS, load_takes
    from model.representation import ARKIT_COLUMNS, FRAME_DIM, MOUTH_DIM
    from model.training.train import Dataset, build_parser, train
    assert "1114_3_16" not in {t.name for t in load_takes(fg)}
    ds = Dataset(SHARED / "beat2", 0.2, [1.0], 60, log=lambda *a: None, facegood=str(fg), facegood_share=0.25)
    assert len(ds.facegood) == 6 and 0.005 < ds.calibration.scale < 2.0
    x, a, st, m, spk, cols = ds.batch(np.random.default_rng(1), 400)
    fgw = cols.sum(1) == 6 + MOUTH_DIM
    assert 0.18 < fgw.float().mean() < 0.32 and torch.all(cols[~fgw].sum(1) == FRAME_DIM - MOUTH_DIM)
    assert torch.all(cols[fgw][:, ARKIT_COLUMNS] == 1) and torch.all(cols[~fgw][:, ARKIT_COLUMNS] == 0)
    assert torch.all(st[fgw] == 4) and torch.all(m[fgw] == 0)
    assert torch.all(x[fgw][..., :JAW_COLUMNS.start] == 0) and x[fgw][..., JAW_COLUMNS].std() > 0.1
    assert x[fgw][..., ARKIT_COLUMNS].std() > 0.1                                  # the hand-animated mouth
    from model.flow import balanced_columns
    bal = balanced_columns(cols)                # --balance-windows: every window weighs the same, total unchanged
    assert torch.allclose(bal.sum(1), bal.sum(1)[0].expand(len(bal))) and torch.isclose(bal.sum(), cols.sum())
    assert torch.all((bal > 0) == (cols > 0)) and bal[fgw].max() > 10 * bal[~fgw].max()
    angles = ds.calibration.angle(np.concatenate([t.jaw_open for t in load_takes(fg)]))
    assert 0.0 <= np.percentile(angles, 50) < 0.3                                 # radians of a real jaw
    info = train(build_parser().parse_args(_ddp_argv(tmp_path, extra=("--facegood", str(fg), "--balance-windows"))))
    assert info["facegood_share"] == 0.25 and info["balance_windows"] and "facegood/1114_2_01" in info["sources"]
    losses = torch.load(tmp_path / "ckpt.pt", weights_only=True)["losses"].numpy()
    assert np.isfinite(losses).all()
