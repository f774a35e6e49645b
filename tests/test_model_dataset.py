"""Training data at scale (model/training/dataset.py): a synthetic BEAT2-layout tree of
300 files made from the capture (time shifts, mirrors, renamed speakers) is
indexed in <= 10 s (cached re-index faster), split by speaker, and trained on
by streaming with peak memory <= 2 GB."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import BEAT2_NPZ, BEAT2_WAV, REPO, need

sf = pytest.importorskip("soundfile")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from model.motion import MotionClip
    from model.representation import mirror_clip
    need(BEAT2_NPZ)
    root = tmp_path_factory.mktemp("beat2_tree")
    (root / "smplxflame_30").mkdir()
    (root / "wave16k").mkdir()
    clip = MotionClip.load(BEAT2_NPZ)
    wave, sr = sf.read(BEAT2_WAV, dtype="float32")
    rng = np.random.default_rng(0)
    for i in range(300):
        n = int(rng.integers(10 * 30, 20 * 30))
        a = int(rng.integers(0, clip.num_frames - n))
        c = clip.slice(a, a + n)
        if i % 2:
            c = mirror_clip(c)
        name = f"{i % 12 + 1}_spk{i % 12}_0_{i}_{i}"
        c.save(root / "smplxflame_30" / f"{name}.npz")
        sf.write(root / "wave16k" / f"{name}.wav", wave[a * sr // 30:(a + n) * sr // 30], sr)
    (root / "wave16k" / "orphan.wav").write_bytes(b"")             # no motion: ignored
    (root / "smplxflame_30" / "broken.npz").write_bytes(b"junk")   # unreadable: skipped, reported
    sf.write(root / "wave16k" / "broken.wav", np.zeros(16000, np.float32), 16000)
    return root


def test_index_is_fast_cached_and_split_by_speaker(tree):
    from model.training.dataset import build_index, split_by_speaker
    msgs = []
    t = time.perf_counter()
    entries = build_index(tree, log=msgs.append)
    first = time.perf_counter() - t
    assert len(entries) == 300 and first <= 10.0, first
    assert any("broken.npz" in m for m in msgs)
    t = time.perf_counter()
    again = build_index(tree, log=msgs.append)
    assert again == entries and "(300 from the cache)" in msgs[-1]
    print(f"index: 300 files in {first:.2f} s, cached {time.perf_counter() - t:.2f} s")
    train, held = split_by_speaker(entries, 2, seed=1)
    assert len({e.speaker for e in held}) == 2
    assert not {e.speaker for e in train} & {e.speaker for e in held} and len(train) + len(held) == 300
    with pytest.raises(ValueError, match="unknown speakers"):
        split_by_speaker(entries, ["nobody"])


def test_streaming_training_stays_small(tree, tmp_path):
    code = ("import sys; sys.path.insert(0, %r); from model.training.train import main; "
            "from model.training.benchmark import peak_rss_mib; "
            "rc = main(sys.argv[1:]); print('PEAK_MB', peak_rss_mib()); "
            "sys.exit(rc)") % str(REPO)
    res = subprocess.run([sys.executable, "-c", code, "--data", str(tree), "--stream", "--holdout-speakers", "2",
                          "--steps", "8", "--batch", "8", "--window", "60", "--overlap", "12", "--d-model", "32",
                          "--layers", "1", "--heads", "2", "--threads", "1", "--cache-files", "4", "--speaker-condition",
                          "--ckpt", str(tmp_path / "ckpt.pt"), "--out", str(tmp_path / "w"),
                          "--evaluate", str(tmp_path / "eval")],
                         capture_output=True, text=True, timeout=900, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    peak = float([l for l in res.stdout.splitlines() if l.startswith("PEAK_MB")][0].split()[1])
    print(f"streaming training: peak RSS {peak:.0f} MB")
    assert peak <= 2048
    import json
    meta = json.loads((tmp_path / "w" / "cospeech.json").read_text())
    assert meta["training"]["stream"] and len(meta["training"]["held_out_speakers"]) == 2
    assert (tmp_path / "eval" / "metrics.json").is_file()    # the project's evaluator ran on the new weights
    assert len(meta["training"]["sources"]) < 300           # held-out speakers' clips are not trained on
    # speaker identity as a condition: 10 training speakers (+ "any"), used by generation as "any speaker"
    assert meta["net"]["n_speakers"] == 10 == len(meta["training"]["speakers"])
    assert not set(meta["training"]["speakers"]) & set(meta["training"]["held_out_speakers"])
    from model.generate import Generator
    clip = Generator.load(str(tmp_path / "w"), "cpu", backend="torch").generate(np.zeros(16000, np.float32), seed=0,
                                                                               steps=2)
    assert clip.num_frames == 30 and np.isfinite(clip.poses).all()
