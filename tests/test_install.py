"""The built packages (not the source tree): each zip carries what its
manifest says, and the linux-x64 zip for a Blender installs into a fresh
Blender of that version and generates a take; a zip for other Blenders is
refused there with Blender's own message.

Needs ``dist/cospeech-*.zip`` (``tools/build_extension.py``: one zip per
platform and Blender range) and ``.venv-pkg*`` (venvs with only the bpy
wheel, made by ``tools/setup.sh test``): the fresh Blenders have no torch,
librosa or scipy of their own, so everything the add-on uses comes from the
package's wheels.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, load_extension_package

sys.path.insert(0, str(REPO / "tools"))
from build_extension import PLATFORMS, PYTHONS, range_label  # noqa: E402

DIST = REPO / "dist"
#: fresh Blenders: venvs with nothing but a bpy wheel (tools/setup.sh test makes them)
FRESH = {  # Blender -> (venv, Python the bpy wheel runs)
    "4.5": (".venv-pkg", "3.11"),
    "5.0": (".venv-pkg50", "3.11"),
    "5.1": (".venv-pkg51", "3.13"),
    "5.2": (".venv-pkg52", "3.13"),
}
DEMO = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"
MAX_ZIP_MIB = 250


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def _missing(what: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what}: .ci/run must make it first")
    pytest.skip(f"{what} (run tools/build_extension.py / tools/setup.sh test)")


def _zip(platform: str, python: str) -> Path:
    label = range_label(*PYTHONS[python]["blender"])
    zips = sorted(DIST.glob(f"cospeech-*-{label}-{platform}.zip"))
    if not zips:
        _missing(f"no {label} {platform} package in {DIST}")
    return zips[-1]


def _manifest(z: zipfile.ZipFile) -> dict:
    return tomllib.loads(z.read("blender_manifest.toml").decode())


def _fresh_python(blender: str) -> Path:
    py = REPO / FRESH[blender][0] / "bin" / "python"
    if not py.exists():
        _missing(f"{py} missing")
    return py


def _smoke(blender: str, zip_path: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"))
    return subprocess.run([str(_fresh_python(blender)), str(REPO / "tests" / "package_smoke.py"),
                           str(zip_path), str(DEMO), *args],
                          capture_output=True, text=True, env=env, timeout=900)


def test_every_tested_blender_has_one_zip_per_platform():
    """The Blender ranges of the zips cover 4.5 LTS to 5.2 LTS without overlap,
    and the source manifest declares exactly that range."""
    for blender in FRESH:
        v = _version(blender) + (0,)
        owners = [py for py, spec in PYTHONS.items()
                  if _version(spec["blender"][0]) <= v < _version(spec["blender"][1])]
        assert len(owners) == 1, (blender, owners)
        assert FRESH[blender][1] == owners[0], f"Blender {blender} runs Python {FRESH[blender][1]}"
    src = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    assert src["blender_version_min"] == min((s["blender"][0] for s in PYTHONS.values()), key=_version)
    assert src["blender_version_max"] == max((s["blender"][1] for s in PYTHONS.values()), key=_version)
    pkg = load_extension_package()
    assert (pkg.BLENDER_MIN, pkg.BLENDER_MAX) == (_version(src["blender_version_min"]),
                                                  _version(src["blender_version_max"]))


def test_source_tree_outside_tested_range(capsys):
    """Run from a source checkout (no manifest check by Blender), register()
    refuses an older Blender with a message and warns on a newer one."""
    pkg = load_extension_package()
    with pytest.raises(RuntimeError, match=r"needs Blender 4\.5 LTS to 5\.2 LTS \(this is Blender 4\.4\.3\)"):
        pkg.check_blender_version((4, 4, 3))
    for ok in [(4, 5, 0), (5, 0, 1), (5, 1, 2), (5, 2, 3)]:
        pkg.check_blender_version(ok)
    assert capsys.readouterr().out == ""
    pkg.check_blender_version((5, 3, 0))
    assert "tested on Blender 4.5 LTS to 5.2 LTS; this is Blender 5.3.0" in capsys.readouterr().out


@pytest.mark.parametrize("python", list(PYTHONS))
@pytest.mark.parametrize("platform", [p.replace("-", "_") for p in PLATFORMS])
def test_zip_contents_match_manifest(platform, python):
    spec = PYTHONS[python]
    path = _zip(platform, python)
    assert path.stat().st_size <= MAX_ZIP_MIB * 2**20, f"{path.name} above {MAX_ZIP_MIB} MiB"
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        man = _manifest(z)
    assert man["platforms"] == [platform.replace("_", "-")]
    assert (man["blender_version_min"], man["blender_version_max"]) == spec["blender"]
    wheels = [w.removeprefix("./") for w in man["wheels"]]
    assert wheels and all(w in names for w in wheels), "manifest lists wheels the zip lacks"
    assert {n for n in names if n.endswith(".whl")} == set(wheels), "zip carries unlisted wheels"
    assert not any(n.startswith(("tests/", "tools/", ".venv", "build/", "dist/")) or "__pycache__" in n
                   for n in names)
    assert not any(Path(n).name.startswith("numpy-") for n in wheels), "numpy must come from Blender"
    assert any(n.startswith("model/weights/") for n in names), "bundled weights missing"
    assert not any(n.startswith("model/training/") for n in names), "training modules shipped"
    assert "addon/gltf_export.py" in names and "addon/assets/ict_head.npz" in names
    # every binary wheel is for this zip's Python (exact ABI, or a stable ABI not newer)
    major_minor = _version(python)
    for w in wheels:
        pytag, abi = Path(w).name[:-4].split("-")[-3:-1]
        if abi == "none":
            continue
        if abi == "abi3":
            assert _version(pytag[2] + "." + pytag[3:]) <= major_minor, w
        else:
            assert abi == spec["abi"], f"{w} is not for Python {python}"
    shared = REPO.parent / "shared" / "data"
    if shared.exists():
        shared_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in shared.rglob("*") if p.is_file()}
        with zipfile.ZipFile(path) as z:
            inside = {hashlib.sha256(z.read(n)).hexdigest() for n in names if not n.endswith("/")}
        assert not shared_hashes & inside, "a file from ../shared is inside the package"


@pytest.mark.parametrize("blender", list(FRESH))
def test_package_installs_and_generates(tmp_path, blender):
    path = _zip("linux_x64", FRESH[blender][1])
    res = _smoke(blender, path, tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert f"BLENDER {blender}." in res.stdout, out[-4000:]
    take = [line for line in res.stdout.splitlines() if line.startswith("TAKE ")]
    assert take, out[-4000:]
    first, last = map(int, take[0].split()[-2:])
    assert last - first + 1 == pytest.approx(4.0 * 30, abs=2)
    installed = tmp_path / "blender_user" / "extensions" / "user_default" / "cospeech"
    assert (installed / "blender_manifest.toml").is_file()
    phones = [line.split()[1:] for line in res.stdout.splitlines() if line.startswith("PHONES ")]
    assert phones and int(phones[0][0]) > 20 and phones[0][0] == phones[0][1], out[-4000:]  # child decodes too
    if (REPO / "addon" / "assets" / "ict_head.npz").exists():       # built into the zip: the head is driven
        face = [line for line in res.stdout.splitlines() if line.startswith("FACE ")]
        assert face and "51/52 ARKit keys" in face[0], out[-4000:]
        assert (installed / "addon" / "assets" / "ICT-FaceKit-LICENSE.txt").is_file()
    if (REPO / "model" / "assets" / "FACEGOOD-LICENSE.txt").exists():   # the weights learnt from FACEGOOD
        assert (installed / "model" / "assets" / "FACEGOOD-LICENSE.txt").is_file()


@pytest.mark.parametrize("blender", ["4.5", "5.2"])
def test_zip_for_other_blenders_is_refused(tmp_path, blender):
    """The zip for the other Python is refused with a message naming the
    version range, and nothing is installed or enabled."""
    other = next(py for py in PYTHONS if py != FRESH[blender][1])
    res = _smoke(blender, _zip("linux_x64", other), tmp_path, "--expect-refused")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    lo, hi = PYTHONS[other]["blender"]
    assert f"minimum supported version ({lo})" in out or f"less than the maximum version ({hi})" in out, \
        out[-4000:]
    assert not (tmp_path / "blender_user" / "extensions" / "user_default" / "cospeech").exists()
