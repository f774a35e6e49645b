#!/usr/bin/env bash
# Set everything up (pinned), then run the demo: the bundled CMU ARCTIC clip
# → scene with a sound strip → Generate on the default rig → .blend, .fbx,
# BEAT2-layout .npz and a rendered contact sheet in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
.venv/bin/python tools/cospeech_cli.py tools/demo_audio/arctic_a0007.wav --out out/demo "$@"
