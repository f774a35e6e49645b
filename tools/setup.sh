#!/usr/bin/env bash
# Install everything the project needs from pinned files (idempotent):
#   .venv    Python 3.11 + bpy 4.5 LTS + torch (CPU) + librosa ...  (main env)
#   .venv50  the same with bpy 5.0 (the suite also runs there)
#   .venv-pkg, .venv-pkg50  only the bpy 4.5 / 5.0 wheel: fresh Blenders for
#            the package install test
#   Debian assimp-utils: independent FBX reader used by the tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

if ! command -v assimp >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq assimp-utils >/dev/null) \
      || echo "warning: could not install assimp-utils; the Assimp FBX check will be skipped"
  else
    echo "note: install Debian/Ubuntu 'assimp-utils' for the independent FBX check (sudo apt-get install assimp-utils)"
  fi
fi

make_env() {  # make_env DIR REQUIREMENTS [NODEPS_REQUIREMENTS]
  local dir=$1 req=$2 nodeps=${3:-}
  [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  if [ -n "$nodeps" ]; then
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$nodeps"
  fi
}
make_env .venv requirements/bpy45.txt requirements/nodeps.txt
if [ "${COSPEECH_SKIP_BPY50:-0}" != 1 ]; then
  make_env .venv50 requirements/bpy50.txt requirements/nodeps.txt
  # a Blender with nothing but the bpy wheel: the package install test
  # installs the built extension zip into it
  make_env .venv-pkg requirements/package_test.txt
  make_env .venv-pkg50 requirements/package_test50.txt
fi
echo "setup done: .venv (bpy $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("bpy"))'))"
