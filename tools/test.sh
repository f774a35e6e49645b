#!/usr/bin/env bash
# Run the test suite: everything on bpy 4.5 LTS (.venv), and the Blender-side
# tests (rig, bake, FBX, extension, operators) again on bpy 5.0 (.venv50).
# Builds the per-platform extension zips first when dist/ has none (the
# package tests check them and install the linux-x64 one into a fresh bpy).
# pytest's exit code 5 ("no tests collected") counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
run() {  # run PYTHON ARGS...
  local py=$1; shift
  "$py" -m pytest "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "FAILED: pytest collected no tests ($*)"; return 1; fi
  return $rc
}
status=0
if ! ls dist/cospeech-*-linux_x64.zip >/dev/null 2>&1; then
  echo "== building the extension packages (tests/test_install.py checks and installs them) =="
  .venv/bin/python tools/build_extension.py || status=1
fi
echo "== bpy 4.5: full suite =="
run .venv/bin/python -q tests "$@" || status=1
if [ -x .venv50/bin/python ]; then
  echo "== bpy 5.0: Blender-side tests =="
  run .venv50/bin/python -q tests/test_bake.py tests/test_fbx.py tests/test_extension.py \
      tests/test_operators.py "$@" || status=1
else
  echo "FAILED: .venv50 (bpy 5.0) missing: run tools/setup.sh"; status=1
fi
exit $status
