"""Build the face assets the extension ships, from ``../shared/data``.

    .venv/bin/python tools/build_face_assets.py [--shared ../shared/data]

Writes (committed, MIT-licensed, each with its licence notice, so a fresh
clone, the demo and every zip have the face without ``../shared``;
``tools/setup.sh`` runs this only when they are missing):

``addon/assets/ict_head.npz``
    The ICT-FaceKit head (USC ICT Vision and Graphics Lab, MIT licence) for
    the default rig: face, back of the head and neck, gums and tongue,
    teeth, eyeballs (sclera, iris) and eyelashes.  The lacrimal fluid, eye
    blend and eye occlusion layers (transparent shading helpers) are left
    out.  Keys: ``vertices`` (V, 3) float32 cm, Y up, looking along +Z
    (ICT's frame, which is SMPL-X's); ``face_vertex_counts`` (F,) uint8,
    ``face_vertex_indices`` (sum,) uint16 (re-indexed), ``face_uv`` (sum, 2)
    float16 per polygon corner, ``face_material`` (F,) uint8 into
    ``material_names``; ``expression_names`` (53,) ICT spelling;
    ``delta_starts`` (54,) int64 and ``delta_indices`` / ``delta_values``
    (float16 cm) — each expression's sparse vertex offsets at weight 1,
    vertices moving less than :data:`DELTA_MIN_CM` dropped.
``addon/assets/ICT-FaceKit-LICENSE.txt``
    Its licence (the upstream text under a line naming what it covers).
``model/assets/FACEGOOD-LICENSE.txt``
    FACEGOOD-Audio2Face's MIT licence: the bundled weights learnt from its
    jaw animation (``model/MODEL_CARD.md``).
``model/assets/oculus_visemes.json``
    The 15 Oculus visemes as ARKit mixes from TalkingHead (Mika Suominen,
    MIT), with ``source`` and ``license`` fields.

Exit status 0 with a note when ``--shared`` has no face data (the rig then
keeps the mannequin's own head and the viseme bake reports the table missing).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HEAD_OUT = REPO / "addon" / "assets" / "ict_head.npz"
VISEMES_OUT = REPO / "model" / "assets" / "oculus_visemes.json"
#: ICT material groups kept on the shipped head.
KEEP_MATERIALS = ("M_Face", "M_BackHead", "M_GumsTongue", "M_Teeth", "M_ScleraLeft", "M_IrisLeft",
                  "M_ScleraRight", "M_IrisRight", "M_EyeLashes")
#: Expression offsets below this (cm, per vertex, max over x/y/z) are dropped: 0.05 mm.
DELTA_MIN_CM = 0.005
MIT_TALKINGHEAD = """MIT License

Copyright (c) 2023-2024 Mika Suominen

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def build_head(src: Path, out: Path) -> dict:
    """Write the compact head asset from ``ict_facekit.npz``; returns sizes."""
    with np.load(src) as d:
        verts = d["vertices"].astype(np.float32)
        counts = d["face_vertex_counts"].astype(np.int64)
        fvi = d["face_vertex_indices"].astype(np.int64)
        uv = d["uv"]
        fuv = d["face_uv_indices"].astype(np.int64)
        fmat = d["face_material"].astype(np.int64)
        mat_names = [str(m) for m in d["material_names"]]
        exp_names = [str(n) for n in d["expression_names"]]
        deltas = d["expression_deltas"]
    keep_mat = np.array([mat_names.index(m) for m in KEEP_MATERIALS])
    keep_face = np.isin(fmat, keep_mat)
    corner_face = np.repeat(np.arange(len(counts)), counts)
    keep_corner = keep_face[corner_face]
    used = np.unique(fvi[keep_corner])
    remap = np.full(len(verts), -1, np.int64)
    remap[used] = np.arange(len(used))
    if len(used) > np.iinfo(np.uint16).max:
        raise SystemExit(f"{len(used)} vertices do not fit uint16 indices")
    mat_lookup = np.full(len(mat_names), -1, np.int64)
    mat_lookup[keep_mat] = np.arange(len(keep_mat))
    new_mat = mat_lookup[fmat[keep_face]]
    d_starts, d_idx, d_val = [0], [], []
    for e in range(len(exp_names)):
        de = deltas[e][used]
        moving = np.nonzero(np.abs(de).max(1) >= DELTA_MIN_CM)[0]
        d_idx.append(moving.astype(np.uint16))
        d_val.append(de[moving].astype(np.float16))
        d_starts.append(d_starts[-1] + len(moving))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(
        tmp, vertices=verts[used], face_vertex_counts=counts[keep_face].astype(np.uint8),
        face_vertex_indices=remap[fvi[keep_corner]].astype(np.uint16),
        face_uv=uv[fuv[keep_corner]].astype(np.float16), face_material=new_mat.astype(np.uint8),
        material_names=np.array(KEEP_MATERIALS), expression_names=np.array(exp_names),
        delta_starts=np.array(d_starts, np.int64), delta_indices=np.concatenate(d_idx),
        delta_values=np.concatenate(d_val),
        source=np.array("ICT-FaceKit (USC ICT Vision and Graphics Lab), MIT licence; "
                        "built by tools/build_face_assets.py"))
    os.replace(tmp, out)
    return {"vertices": len(used), "faces": int(keep_face.sum()), "bytes": out.stat().st_size}


def build_visemes(src: Path, out: Path) -> int:
    """Write the viseme table with its licence; returns the number of visemes."""
    table = json.loads(src.read_text())
    visemes = {name: {k: float(v) for k, v in mix.items()} for name, mix in table["visemes"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"source": table.get("source", "met4citizen/TalkingHead"), "license": MIT_TALKINGHEAD,
           "visemes": visemes}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out)
    return len(visemes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    ict = args.shared / "ict_facekit" / "ict_facekit.npz"
    vis = args.shared / "visemes" / "oculus_visemes_from_arkit.json"
    if ict.exists():
        info = build_head(ict, HEAD_OUT)
        (HEAD_OUT.parent / "ICT-FaceKit-LICENSE.txt").write_text(
            "The head in ict_head.npz is derived from ICT-FaceKit (USC ICT Vision and Graphics Lab,\n"
            "https://github.com/ICT-VGL/ICT-FaceKit), distributed under this licence:\n\n"
            + (ict.parent / "LICENSE").read_text())
        print(f"{HEAD_OUT.relative_to(REPO)}: {info['vertices']} vertices, {info['faces']} polygons, "
              f"{info['bytes'] / 1e6:.2f} MB")
    else:
        print(f"note: {ict} not found: the default rig keeps the mannequin's head (no ICT face)")
    fg = args.shared / "facegood" / "LICENSE"
    if fg.exists():     # the bundled weights learnt from FACEGOOD's jaw animation: keep its notice
        VISEMES_OUT.parent.mkdir(parents=True, exist_ok=True)
        (VISEMES_OUT.parent / "FACEGOOD-LICENSE.txt").write_text(
            "The bundled weights (model/weights) were trained in part on the mouth animation of\n"
            "FACEGOOD-Audio2Face (https://github.com/FACEGOOD/FACEGOOD-Audio2Face), distributed under this "
            "licence:\n\n" + fg.read_text())
    if vis.exists():
        n = build_visemes(vis, VISEMES_OUT)
        print(f"{VISEMES_OUT.relative_to(REPO)}: {n} visemes")
    else:
        print(f"note: {vis} not found: no viseme table (meshes with viseme_* keys are reported, not driven)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
