#!/usr/bin/env bash
# Install what the project needs from the pinned files in requirements/.
#
#   bash tools/setup.sh          # = demo: only .venv (what tools/demo.sh needs)
#   bash tools/setup.sh test     # everything tools/test.sh and .ci/run need
#
#   demo  .venv        Python 3.11 + bpy 4.5 LTS + torch (CPU) + ONNX Runtime,
#                      librosa ...  (the main environment)
#   test  .venv        as above
#         .venv50      Python 3.11 + bpy 5.0 (the Blender-side tests run there too)
#         .venv52      Python 3.13 + bpy 5.2 LTS + numpy 2 + ONNX Runtime, librosa ...
#                      (no torch: PyPI has no small CPU torch for it; torch tests skip)
#         .venv-pkg, .venv-pkg50, .venv-pkg51, .venv-pkg52
#                      nothing but the bpy 4.5 / 5.0 / 5.1 / 5.2 wheel: fresh
#                      Blenders for the package install test (5.1 with numpy
#                      2.2, the oldest numpy its bpy accepts)
#         Debian assimp-utils (independent FBX reader used by one test)
#         tests/js/node_modules: glTF-Validator + three.js (npm ci, pinned lock file)
#
# Idempotent and quick when nothing changed: each venv records the hash of
# its requirement files and is only touched by pip when they change.
# Interpreters: $PYTHON311 / $PYTHON313 (or $PYTHON for 3.11), else
# python3.11 / python3.13 on PATH, else pyenv's installed versions.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-demo}
case $what in demo|test) ;; *) echo "usage: bash tools/setup.sh [demo|test]" >&2; exit 2;; esac

find_python() {  # find_python 3.11 -> prints an interpreter path
  local v=$1 var=PYTHON${1/./} p
  [ "$v" = 3.11 ] && [ -z "${PYTHON311:-}" ] && [ -n "${PYTHON:-}" ] && { echo "$PYTHON"; return; }
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  if p=$(command -v "python$v") && "$p" -c '' >/dev/null 2>&1; then echo "$p"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    for p in "$(pyenv root)"/versions/"$v"*/bin/python"$v"; do
      [ -x "$p" ] && { echo "$p"; return; }
    done
  fi
  echo "error: Python $v not found (set PYTHON${1/./}=/path/to/python$v, or e.g. 'pyenv install $v')" >&2
  return 1
}

make_env() {  # make_env DIR PYTHON REQUIREMENTS [NODEPS_REQUIREMENTS]
  local dir=$1 py=$2 req=$3 nodeps=${4:-} stamp want t0=$SECONDS
  stamp=$dir/.cospeech-requirements.sha256
  want=$(cat "$req" ${nodeps:+"$nodeps"} | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$dir: up to date"
    return
  fi
  echo "$dir: installing $req${nodeps:+ + $nodeps (--no-deps)} ..."
  [ -x "$dir/bin/python" ] || "$py" -m venv "$dir"
  rm -f "$stamp"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  if [ -n "$nodeps" ]; then
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$nodeps"
  fi
  echo "$want" >"$stamp"
  echo "$dir: ready ($((SECONDS - t0)) s)"
}

PY311=$(find_python 3.11)
make_env .venv "$PY311" requirements/bpy45.txt requirements/nodeps.txt
# the ICT-FaceKit head and the viseme table (MIT, committed with their licence notices):
# rebuilt from ../shared/data only when missing (python tools/build_face_assets.py rebuilds them)
if [ ! -f addon/assets/ict_head.npz ] || [ ! -f model/assets/oculus_visemes.json ]; then
  .venv/bin/python tools/build_face_assets.py
fi

if [ "$what" = test ]; then
  if ! command -v assimp >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && apt-get install -y -qq assimp-utils >/dev/null) \
        || echo "warning: could not install assimp-utils; the Assimp FBX check will be skipped"
    else
      echo "note: install Debian/Ubuntu 'assimp-utils' for the independent FBX check (sudo apt-get install assimp-utils)"
    fi
  fi
  PY313=$(find_python 3.13)
  make_env .venv50 "$PY311" requirements/bpy50.txt requirements/nodeps.txt
  make_env .venv52 "$PY313" requirements/bpy52.txt requirements/nodeps.txt
  # Blenders with nothing but the bpy wheel: the package install test
  # installs the built extension zip into them
  make_env .venv-pkg "$PY311" requirements/package_test.txt
  make_env .venv-pkg50 "$PY311" requirements/package_test50.txt
  make_env .venv-pkg51 "$PY313" requirements/package_test51.txt
  make_env .venv-pkg52 "$PY313" requirements/package_test52.txt
  # independent glTF readers for the export tests: the Khronos glTF-Validator and
  # three.js (GLTFLoader) under node, exact versions from tests/js/package-lock.json
  if command -v npm >/dev/null 2>&1; then
    if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
      npm ci --prefix tests/js --no-audit --no-fund --loglevel=error && touch tests/js/node_modules
    else
      echo "tests/js/node_modules: up to date"
    fi
  else
    echo "note: install node and npm for the glTF checks (tests/test_gltf.py skips without them)"
  fi
fi
echo "setup done ($what)"
