#!/usr/bin/env bash
# Set up what the demo needs (.venv: Python 3.11 + bpy 4.5 LTS + the model's
# dependencies, pinned; the test-only environments are left to tools/test.sh),
# then run the demo: the bundled CMU ARCTIC clip → scene with a sound strip →
# Generate on the default rig → .blend, .fbx, BEAT2-layout .npz and a rendered
# contact sheet in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh demo
.venv/bin/python tools/cospeech_cli.py tools/demo_audio/arctic_a0007.wav --out out/demo "$@"
