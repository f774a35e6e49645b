"""Build the per-platform extension zips with Blender's own builder.

    .venv/bin/python tools/build_extension.py [--platforms linux-x64 windows-x64 macos-arm64]
                                              [--out dist/]

1. Stage the extension's files (manifest, ``__init__.py``, addon/, operators/,
   panels/, model/ with the bundled weights; no tests, tools, caches or
   anything from ../shared).
2. Download the runtime wheels listed in ``requirements/extension.txt``
   (pinned by ``requirements/bpy45.txt``) for each platform from PyPI with
   ``pip download --only-binary`` — never committed.  numpy is left out:
   Blender ships it.
3. Per platform, write its wheel list and platform into the staged
   manifest and run ``blender_ext.py build --split-platforms`` (shipped in
   the bpy wheel), then ``blender_ext.py validate`` on every zip.
4. Print each zip's size.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build"

#: Blender platform name -> pip ``--platform`` tags accepted for its wheels.
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                  "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
}
STAGE_ITEMS = ["blender_manifest.toml", "__init__.py", "README.md", "addon", "operators", "panels", "model"]
EXCLUDE_DIRS = {"__pycache__", ".pytest_cache", "eval_plots"}
#: Blender bundles numpy; shipping another copy would shadow it.
SKIP_WHEELS = re.compile(r"^numpy-")


def blender_ext() -> Path:
    import bpy  # the bpy wheel ships Blender's extension tooling
    path = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not path.is_file():
        raise SystemExit(f"blender_ext.py not found in the bpy wheel ({path})")
    return path


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


def download_wheels(platform: str, cache: Path) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    cons = cache.parent / "constraints.txt"
    cons.write_text("".join(line for line in (REPO / "requirements" / "bpy45.txt").read_text().splitlines(True)
                            if not line.startswith(("bpy==", "torch=="))))
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
           "--abi", "cp311", "--abi", "abi3", "--abi", "none", "-c", str(cons),
           "-r", str(REPO / "requirements" / "extension.txt"), "-d", str(cache)]
    for tag in PLATFORMS[platform]:
        cmd += ["--platform", tag]
    subprocess.run(cmd, check=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                    "--no-deps", "-r", str(REPO / "requirements" / "nodeps.txt"), "-d", str(cache)],
                   check=True)
    return sorted(w for w in cache.glob("*.whl") if not SKIP_WHEELS.match(w.name))


def write_manifest(stage_dir: Path, platforms: list[str], wheels: list[str]) -> None:
    path = stage_dir / "blender_manifest.toml"
    text = path.read_text()
    text = re.sub(r"(?m)^(platforms|wheels)\s*=.*$\n?", "", text)
    block = ("platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]\n"
             "wheels = [\n" + "".join(f'  "./wheels/{w}",\n' for w in wheels) + "]\n")
    text = text.replace("\n[permissions]", "\n" + block + "\n[permissions]", 1)
    path.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--platforms", nargs="+", default=list(PLATFORMS), choices=list(PLATFORMS))
    ap.add_argument("--out", default=str(REPO / "dist"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tool = blender_ext()
    for old in out.glob("cospeech-*.zip"):
        old.unlink()
    for plat in args.platforms:
        # One staged tree per platform, so each zip's manifest lists exactly
        # its platform and its wheels (the 4.5 builder's --split-platforms
        # filters the wheel files but copies the full lists into every zip).
        stage_dir = BUILD / f"stage-{plat}"
        stage(stage_dir)
        (stage_dir / "wheels").mkdir()
        names = []
        for whl in download_wheels(plat, BUILD / "wheels" / plat):
            shutil.copy2(whl, stage_dir / "wheels" / whl.name)
            names.append(whl.name)
        write_manifest(stage_dir, [plat], sorted(names))
        subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(stage_dir),
                        "--output-dir", str(out), "--split-platforms"], check=True)
    zips = sorted(out.glob("cospeech-*.zip"))
    if len(zips) != len(args.platforms):
        raise SystemExit(f"expected {len(args.platforms)} zips, got {[z.name for z in zips]}")
    for z in zips:
        subprocess.run([sys.executable, str(tool), "validate", str(z)], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"{z.name}: {z.stat().st_size / 2**20:.1f} MiB (validated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
