"""Batch folder mode (tools/batch.py) through the real CLI: Ray local workers
and a local Ray cluster started by the test (loopback), a worker killed
mid-file, resume, bad files, a full disk, an unreachable cluster, and
outputs byte-identical to single-file runs."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ARCTIC_A0009_TEXT, DEV_AUDIO, FRENCH_TEXT, REPO, SHARED_DATA, need

pytest.importorskip("ray")
pytest.importorskip("bpy")
sf = pytest.importorskip("soundfile")

CLI = [sys.executable, str(REPO / "tools" / "cospeech_cli.py")]
ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"


def speech_folder(root: Path, n: int, seconds=(1.0, 2.5)) -> list[Path]:
    """``n`` speech-like files: random stretches of the demo clip (and of the
    BEAT2 speech when ../shared is there), random gain, some in a subfolder
    with a name that repeats one at the top level."""
    waves = [sf.read(ARCTIC, dtype="float32")[0]]
    beat2 = SHARED_DATA / "beat2" / "wave16k" / "2_scott_0_1_1.wav"
    if beat2.exists():
        waves.append(sf.read(beat2, dtype="float32")[0])
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        w = waves[i % len(waves)]
        length = int(rng.uniform(*seconds) * 16000)
        a = int(rng.integers(0, max(1, len(w) - length)))
        sub = root / "sub" if i % 3 == 2 else root
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"line{i // 3 if i % 3 == 2 else i}.wav"
        sf.write(path, w[a:a + length] * rng.uniform(0.5, 1.0), 16000)
        out.append(path)
    return out


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def fbx_without_timestamp(path: Path) -> bytes:
    """The FBX bytes with the header's CreationTimeStamp block blanked (the one
    thing Blender's exporter writes differently every run)."""
    data = path.read_bytes()
    a, b = data.index(b"CreationTimeStamp"), data.index(b"Creator")
    return data[:a] + b"\0" * (b - a) + data[b:]


def run_cli(*args, env=None, timeout=900):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_batch_bad_files_resume_and_identical_outputs(tmp_path):
    src = tmp_path / "in"
    good = speech_folder(src, 4)
    (src / "empty.wav").write_bytes(b"")
    (src / "notes.mp3").write_text("not audio")
    out = tmp_path / "out"
    res = run_cli(src, "--out", out, "--workers", 2, "--no-preview", "--seed", 3)
    assert res.returncode == 1, res.stdout + res.stderr              # two bad files: non-zero
    recs = {r["input"]: r for r in manifest(out)}
    assert set(recs) == {str(p) for p in good} | {str(src / "empty.wav"), str(src / "notes.mp3")}
    assert "empty file" in recs[str(src / "empty.wav")]["error"]
    assert "not a supported audio file" in recs[str(src / "notes.mp3")]["error"]
    names = {recs[str(p)]["name"] for p in good}
    assert {"line0", "line1", "line3", "sub__line0"} == names         # duplicate stem in a subfolder
    assert not (out / ".partial").exists()
    # the same bytes as single-file runs with the same seed (FBX: but its creation timestamp)
    for p in (good[0], good[2]):
        single = tmp_path / "single" / p.stem
        assert run_cli(p, "--out", single, "--no-preview", "--seed", 3).returncode == 0
        name = recs[str(p)]["name"]
        assert (single / f"{p.stem}.npz").read_bytes() == (out / name / f"{name}.npz").read_bytes()
        assert fbx_without_timestamp(single / f"{p.stem}.fbx") == fbx_without_timestamp(out / name / f"{name}.fbx")
    # resume: good files are skipped and untouched; the bad ones are tried again
    mtimes = {f: f.stat().st_mtime_ns for f in out.rglob("*.npz")}
    res = run_cli(src, "--out", out, "--workers", 2, "--no-preview", "--seed", 3)
    assert res.returncode == 1 and "resume: 4 of 6 files already done" in res.stdout + res.stderr
    assert {f: f.stat().st_mtime_ns for f in out.rglob("*.npz")} == mtimes
    # other settings: everything is generated again
    (src / "empty.wav").unlink()
    (src / "notes.mp3").unlink()
    res = run_cli(src, "--out", out, "--no-preview", "--seed", 4)
    assert res.returncode == 0 and "already done" not in res.stdout + res.stderr


def _ray_workers_running_a_file() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"ray::process_file" in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.fixture
def ray_cluster(tmp_path):
    """A local Ray head on loopback (2 CPUs), stopped afterwards."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = 6390 + os.getpid() % 500
    # loopback only, so no token authentication (the driver gets the same RAY_AUTH_MODE)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    subprocess.run([ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, capture_output=True,
                   env=env, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env, timeout=120)


@pytest.mark.parametrize("mode", ["workers", "cluster"])
def test_killed_worker_loses_only_that_files_retry(tmp_path, mode, request):
    src = tmp_path / "in"
    files = speech_folder(src, 8, seconds=(2.0, 4.0))
    out = tmp_path / "out"
    where = ["--workers", "2"] if mode == "workers" else ["--cluster", request.getfixturevalue("ray_cluster")]
    proc = subprocess.Popen(CLI + [str(src), "--out", str(out), "--no-preview"] + where,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "RAY_AUTH_MODE": "disabled"} if mode == "cluster" else None)
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline and proc.poll() is None:
        busy = _ray_workers_running_a_file()
        done = len((out / "manifest.jsonl").read_text().splitlines()) if (out / "manifest.jsonl").exists() else 0
        if busy and done >= 1:                  # workers warm, one file done: kill one mid-file
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    log, _ = proc.communicate(timeout=600)
    assert killed is not None, "no worker was seen running a file\n" + log
    assert proc.returncode == 0, log
    recs = manifest(out)
    assert {r["input"] for r in recs} == {str(p) for p in files} and not any(r["error"] for r in recs)
    assert not (out / ".partial").exists()
    for r in recs:
        for o in r["outputs"].values():
            assert (out / o["path"]).stat().st_size > 0
    assert len(list(out.rglob("*.npz"))) == len(files) and len(list(out.rglob("*.fbx"))) == len(files)


def test_full_disk_and_unreachable_cluster(tmp_path):
    src = tmp_path / "in"
    speech_folder(src, 2)
    out = tmp_path / "out"
    res = run_cli(src, "--out", out, "--no-preview", env={"COSPEECH_FAKE_DISK_BYTES": "1000"})
    assert res.returncode == 1
    recs = manifest(out)
    assert len(recs) == 2 and all("No space left on device" in r["error"] for r in recs)
    assert not list(out.rglob("*.npz")) and not list(out.rglob("*.fbx")) and not (out / ".partial").exists()
    t = time.time()
    res = run_cli(src, "--out", tmp_path / "out2", "--cluster", "127.0.0.1:9", timeout=120)
    assert res.returncode == 2 and "cannot reach the Ray cluster at 127.0.0.1:9" in res.stderr
    assert time.time() - t < 60


def test_folder_mode_dialogue_texts(tmp_path):
    """NAME.txt beside NAME.wav in folder mode (in-process, no Ray): the right line is
    aligned, another language falls back to decoding and is listed, both takes are made;
    the manifest records each text's hash and where the phones came from, and editing
    one text re-generates that line only."""
    pytest.importorskip("pocketsphinx")
    wav = need(DEV_AUDIO / "arctic_a0009.wav")
    src, out = tmp_path / "lines", tmp_path / "out"
    src.mkdir()
    for name, text in (("right", ARCTIC_A0009_TEXT), ("french", FRENCH_TEXT)):
        shutil.copy(wav, src / f"{name}.wav")
        (src / f"{name}.txt").write_text(text, encoding="utf-8")
    cmd = CLI + [str(src), "--out", str(out), "--no-preview", "--steps", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    recs = {Path(rec["input"]).stem: rec for rec in manifest(out)}
    assert not recs["right"]["error"] and recs["right"]["phones"].startswith("phones aligned to the text")
    assert not recs["french"]["error"] and "not aligned" in recs["french"]["phones"]
    assert all(rec["outputs"] and len(rec["text_sha256"]) == 64 for rec in recs.values())
    assert "french.wav: text not aligned" in r.stdout + r.stderr
    (src / "right.txt").write_text("Philip Steels wrote the danger trail.", encoding="utf-8")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    again = manifest(out)[2:]
    assert [Path(rec["input"]).stem for rec in again] == ["right"]      # french.wav skipped as done
    assert again[0]["text_sha256"] != recs["right"]["text_sha256"]
