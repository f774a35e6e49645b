"""The built linux-x64 package (not the source tree) installs into a fresh
Blender and generates a take.

Needs ``dist/cospeech-*-linux_x64.zip`` (``tools/build_extension.py``) and
``.venv-pkg`` (a venv with only the bpy wheel, made by ``tools/setup.sh``):
the fresh Blender has no torch, librosa or scipy of its own, so everything
the add-on uses comes from the package's wheels.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

DIST = REPO / "dist"
#: fresh Blenders: venvs with nothing but a bpy wheel (tools/setup.sh makes them)
FRESH_PY = {"4.5": REPO / ".venv-pkg" / "bin" / "python", "5.0": REPO / ".venv-pkg50" / "bin" / "python"}
DEMO = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"


def _zip(platform: str) -> Path:
    zips = sorted(DIST.glob(f"cospeech-*-{platform}.zip"))
    if not zips:
        if os.environ.get("CI"):
            pytest.fail(f"no {platform} package in {DIST}: .ci/run must build it first")
        pytest.skip(f"no {platform} package built (run tools/build_extension.py)")
    return zips[-1]


def _manifest(z: zipfile.ZipFile) -> dict:
    import tomllib
    return tomllib.loads(z.read("blender_manifest.toml").decode())


@pytest.mark.parametrize("platform", ["linux_x64", "windows_x64", "macos_arm64"])
def test_zip_contents_match_manifest(platform):
    path = _zip(platform)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        man = _manifest(z)
    assert man["platforms"] == [platform.replace("_", "-")]
    wheels = [w.removeprefix("./") for w in man["wheels"]]
    assert wheels and all(w in names for w in wheels), "manifest lists wheels the zip lacks"
    assert {n for n in names if n.endswith(".whl")} == set(wheels), "zip carries unlisted wheels"
    assert not any(n.startswith(("tests/", "tools/", ".venv", "build/", "dist/")) or "__pycache__" in n
                   for n in names)
    assert not any(Path(n).name.startswith("numpy-") for n in wheels), "numpy must come from Blender"
    assert any(n.startswith("model/weights/") for n in names), "bundled weights missing"
    shared = REPO.parent / "shared" / "data"
    if shared.exists():
        import hashlib
        shared_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in shared.rglob("*") if p.is_file()}
        with zipfile.ZipFile(path) as z:
            inside = {hashlib.sha256(z.read(n)).hexdigest() for n in names if not n.endswith("/")}
        assert not shared_hashes & inside, "a file from ../shared is inside the package"


@pytest.mark.parametrize("blender", ["4.5", "5.0"])
def test_package_installs_and_generates(tmp_path, blender):
    path = _zip("linux_x64")
    py = FRESH_PY[blender]
    if not py.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{py} missing: tools/setup.sh makes it")
        pytest.skip(f"no bpy-only venv for Blender {blender}: run tools/setup.sh")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"))
    res = subprocess.run([str(py), str(REPO / "tests" / "package_smoke.py"), str(path), str(DEMO)],
                         capture_output=True, text=True, env=env, timeout=900)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    take = [line for line in res.stdout.splitlines() if line.startswith("TAKE ")]
    assert take, out[-4000:]
    first, last = map(int, take[0].split()[-2:])
    assert last - first + 1 == pytest.approx(4.0 * 30, abs=2)
    installed = tmp_path / "blender_user" / "extensions" / "user_default" / "cospeech"
    assert (installed / "blender_manifest.toml").is_file()
