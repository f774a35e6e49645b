"""Build the per-platform extension zips with Blender's own builder.

    .venv/bin/python tools/build_extension.py [--layout split|fat]
        [--platforms linux-x64 windows-x64 macos-arm64] [--out dist/]

Blender 4.5 LTS and 5.0 run Python 3.11 (numpy 1.26); Blender 5.1 and
5.2 LTS run Python 3.13 (numpy 2).  The binary wheels (ONNX Runtime, scipy,
numba, ...) differ between the two, so there are two layouts:

``split`` (default): one zip per platform *and* Python, each declaring its
    Blender range in its manifest (``blender_version_max`` is exclusive):
    ``cospeech-0.1.0-blender4.5-5.0-linux_x64.zip`` (cp311 wheels,
    4.5.0 <= Blender < 5.1.0) and ``cospeech-0.1.0-blender5.1-5.2-linux_x64.zip``
    (cp313 wheels, 5.1.0 <= Blender < 5.3.0).
``fat``: one zip per platform with both the cp311 and the cp313 wheels
    (Blender installs the wheels matching its Python),
    ``cospeech-0.1.0-blender4.5-5.2-linux_x64.zip``.

Steps:

1. Stage the extension's files (manifest, ``__init__.py``, addon/, operators/,
   panels/, model/ with the bundled weights; no tests, tools, caches or
   anything from ../shared).
2. Download the runtime wheels listed in ``requirements/extension.txt`` for
   each platform and Python from PyPI with ``pip download --only-binary``,
   pinned by ``requirements/bpy45.txt`` (Python 3.11) or
   ``requirements/bpy52.txt`` (Python 3.13, numpy 2) — never committed.
   The download runs under the target Python (``.venv52`` or a python3.13
   for 3.13) so that ``python_version`` markers resolve right.  numpy is
   left out: Blender ships it.
3. Per zip, write its wheel list, platform and Blender range into the
   staged manifest and run ``blender_ext.py build --split-platforms``
   (shipped in the bpy wheel), then ``blender_ext.py validate`` on every zip.
4. Print each zip's size.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build"
REQ = REPO / "requirements"

#: Blender platform name -> pip ``--platform`` tags accepted for its wheels.
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                  "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
}
#: Python of a Blender series -> wheel ABI, pins, and the Blender versions
#: (min inclusive, max exclusive) that run it.  Tested: 4.5 LTS, 5.0, 5.2 LTS.
PYTHONS = {
    "3.11": {"abi": "cp311", "pins": REQ / "bpy45.txt", "blender": ("4.5.0", "5.1.0")},
    "3.13": {"abi": "cp313", "pins": REQ / "bpy52.txt", "blender": ("5.1.0", "5.3.0")},
}
STAGE_ITEMS = ["blender_manifest.toml", "__init__.py", "README.md", "addon", "operators", "panels", "model"]
EXCLUDE_DIRS = {"__pycache__", ".pytest_cache", "eval_plots", "training"}
#: Blender bundles numpy; shipping another copy would shadow it.
SKIP_WHEELS = re.compile(r"^numpy-")


def blender_ext() -> Path:
    import bpy  # the bpy wheel ships Blender's extension tooling
    path = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not path.is_file():
        raise SystemExit(f"blender_ext.py not found in the bpy wheel ({path})")
    return path


def range_label(lo: str, hi: str) -> str:
    """``("4.5.0", "5.1.0")`` -> ``"blender4.5-5.0"`` (the last minor below the exclusive max)."""
    lo_major, lo_minor = map(int, lo.split(".")[:2])
    hi_major, hi_minor = map(int, hi.split(".")[:2])
    last = f"{hi_major}.{hi_minor - 1}" if hi_minor else f"{hi_major - 1}.x"
    return f"blender{lo_major}.{lo_minor}-{last}"


def pip_python(version: str) -> str:
    """An interpreter of Python ``version`` with pip, to run ``pip download`` under
    (pip evaluates ``python_version`` markers with the running interpreter)."""
    found = find_pip_python(version)
    if found is None:
        tag = version.replace(".", "")
        raise SystemExit(f"no Python {version} with pip found (set PYTHON{tag}=/path/to/python{version}); "
                         "it downloads the wheels for Blenders running Python " + version)
    return found


def find_pip_python(version: str) -> str | None:
    """:func:`pip_python`, or None when this machine has no such interpreter."""
    if "%d.%d" % sys.version_info[:2] == version:
        return sys.executable
    tag = version.replace(".", "")
    local = {"3.11": [".venv"], "3.13": [".venv52", ".venv-pkg52"]}.get(version, [])
    candidates = [os.environ.get(f"PYTHON{tag}", ""), *(str(REPO / v / "bin" / "python") for v in local),
                  shutil.which(f"python{version}") or ""]
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
        candidates += sorted(str(p) for p in Path(root).glob(f"versions/{version}*/bin/python{version}"))
    except (OSError, subprocess.CalledProcessError):
        pass
    for c in candidates:
        if c and os.path.isfile(c) and subprocess.run([c, "-m", "pip", "--version"],
                                                      capture_output=True).returncode == 0:
            return c
    return None


def stage(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for item in STAGE_ITEMS:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns(*EXCLUDE_DIRS, "*.pyc", "*.png"))
        else:
            shutil.copy2(src, dest / item)


def download_wheels(platform: str, python: str) -> list[Path]:
    spec = PYTHONS[python]
    cache = BUILD / "wheels" / f"{platform}-{spec['abi']}"
    cache.mkdir(parents=True, exist_ok=True)
    cons = cache / "constraints.txt"
    cons.write_text("".join(line for line in spec["pins"].read_text().splitlines(True)
                            if not line.startswith(("bpy==", "torch=="))))
    py = pip_python(python)
    cmd = [py, "-m", "pip", "download", "-q", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
           "--abi", spec["abi"], "--abi", "abi3", "--abi", "none", "-c", str(cons),
           "-r", str(REQ / "extension.txt"), "-d", str(cache)]
    for tag in PLATFORMS[platform]:
        cmd += ["--platform", tag]
    subprocess.run(cmd, check=True)
    subprocess.run([py, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                    "--no-deps", "-r", str(REQ / "nodeps.txt"), "-d", str(cache)], check=True)
    # Only what this run asked for (the cache may hold wheels of older pins).
    wanted = {line.split("==")[0].lower().replace("-", "_"): line.split("==")[1].strip()
              for line in cons.read_text().splitlines() + (REQ / "nodeps.txt").read_text().splitlines()
              if "==" in line}
    wheels = []
    for w in sorted(cache.glob("*.whl")):
        name, version = w.name.split("-")[:2]
        if SKIP_WHEELS.match(w.name) or wanted.get(name.lower()) not in (None, version):
            continue
        wheels.append(w)
    return wheels


def write_manifest(stage_dir: Path, platforms: list[str], wheels: list[str], blender: tuple[str, str]) -> None:
    path = stage_dir / "blender_manifest.toml"
    text = path.read_text()
    for key, value in (("blender_version_min", blender[0]), ("blender_version_max", blender[1])):
        text, n = re.subn(rf'(?m)^{key}\s*=.*$', f'{key} = "{value}"', text)
        if n != 1:
            raise SystemExit(f"blender_manifest.toml must set {key} once")
    text = re.sub(r"(?ms)^wheels\s*=\s*\[.*?\]\n", "", text)
    text = re.sub(r"(?m)^platforms\s*=.*$\n?", "", text)
    block = ("platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]\n"
             "wheels = [\n" + "".join(f'  "./wheels/{w}",\n' for w in wheels) + "]\n")
    text = text.replace("\n[permissions]", "\n" + block + "\n[permissions]", 1)
    path.write_text(text)


def builds(layout: str) -> list[tuple[list[str], tuple[str, str]]]:
    """[(Pythons whose wheels go into one zip, its Blender range)]."""
    if layout == "split":
        return [([py], spec["blender"]) for py, spec in PYTHONS.items()]
    pys = list(PYTHONS)
    return [(pys, (PYTHONS[pys[0]]["blender"][0], PYTHONS[pys[-1]]["blender"][1]))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layout", choices=["split", "fat"], default="split",
                    help="split: one zip per platform and Python (default); fat: both Pythons' wheels in one zip")
    ap.add_argument("--platforms", nargs="+", default=list(PLATFORMS), choices=list(PLATFORMS))
    ap.add_argument("--out", default=str(REPO / "dist"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tool = blender_ext()
    for old in out.glob("cospeech-*.zip"):
        old.unlink()
    made, skipped = [], []
    for pythons, blender in builds(args.layout):
        label = range_label(*blender)
        missing = [py for py in pythons if find_pip_python(py) is None]
        if missing:
            skipped.append((label, missing))
            continue
        for plat in args.platforms:
            # One staged tree per zip, so each zip's manifest lists exactly its
            # platform, its wheels and its Blender range (the 4.5 builder's
            # --split-platforms filters the wheel files but copies the full
            # lists into every zip).
            stage_dir = BUILD / f"stage-{label}-{plat}"
            stage(stage_dir)
            (stage_dir / "wheels").mkdir()
            names: dict[str, str] = {}
            for py in pythons:
                for whl in download_wheels(plat, py):
                    names.setdefault(whl.name, py)
                    shutil.copy2(whl, stage_dir / "wheels" / whl.name)
            _check_one_version_per_python(names)
            write_manifest(stage_dir, [plat], sorted(names), blender)
            tmp = BUILD / "out"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(stage_dir),
                            "--output-dir", str(tmp), "--split-platforms"], check=True)
            (built,) = tmp.glob("cospeech-*.zip")
            # cospeech-0.1.0-linux_x64.zip -> cospeech-0.1.0-blender4.5-5.0-linux_x64.zip
            stem, _, plat_suffix = built.stem.rpartition("-")
            dest = out / f"{stem}-{label}-{plat_suffix}.zip"
            shutil.move(built, dest)
            made.append(dest)
    for z in made:
        subprocess.run([sys.executable, str(tool), "validate", str(z)], check=True, stdout=subprocess.DEVNULL)
        print(f"{z.name}: {z.stat().st_size / 2**20:.1f} MiB (validated)")
    too_big = [z.name for z in made if z.stat().st_size > 250 * 2**20]
    if too_big:
        raise SystemExit(f"zips above 250 MiB: {too_big}")
    for label, missing in skipped:
        print(f"skipped the {label} zips: no Python {', '.join(missing)} with pip here; "
              "`bash tools/setup.sh test` makes one (.venv52), or set PYTHON313=/path/to/python3.13")
    return 0


def _check_one_version_per_python(names: dict[str, str]) -> None:
    """Blender installs, per distribution, the highest version among the wheels
    matching its Python: two pure-Python wheels of one distribution at different
    versions would silently give one Python the other's pin."""
    seen: dict[tuple[str, str], str] = {}
    for name in names:
        dist, version, *_, pytag, abi, _plat = name[:-4].split("-")
        if abi == "none":  # pure Python: shared by every Python
            key = (dist.lower(), "any")
            if seen.setdefault(key, version) != version:
                raise SystemExit(f"{dist}: pure-Python wheels at two versions ({seen[key]}, {version})")


if __name__ == "__main__":
    sys.exit(main())
