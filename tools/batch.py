"""Batch generation for the CLI's folder mode: many speech files, local
worker processes or a Ray cluster, a resumable manifest.

    .venv/bin/python tools/cospeech_cli.py FOLDER --out DIR [--workers N | --cluster HOST:PORT] [CLI options]

Why Ray (tasks) and not Dask distributed: every file is a Blender job, and
bpy must run on its process's main thread; Ray runs a task on its worker
process's main thread, Dask on a worker's executor thread.  Ray also
retries a task whose worker process died (``max_retries``), and the same
code runs on a laptop (``ray.init(num_cpus=N)``) or on a cluster started
with ``ray start --head`` (``--cluster ADDRESS``; the nodes must see the
repository, its ``.venv`` and the audio at the same paths, e.g. a shared
filesystem).

Per input file (found recursively; names made unique: ``sub/line.wav`` →
``sub__line``) the worker writes ``DIR/NAME/NAME.npz``, ``NAME.fbx`` and,
unless ``--no-preview``, ``NAME_preview.png`` — first into
``DIR/.partial/NAME/``, then each moved into place with ``os.replace``
(atomic on one filesystem), so a killed worker or a full disk never leaves
a partial output where outputs go.  The driver (one writer) appends one
JSON line per finished file to ``DIR/manifest.jsonl``: input path, audio
SHA-256, the SHA-256 of its dialogue text (``NAME.txt`` beside it; "" without
one), where its phones came from (``phones``: aligned to the text, or decoded
and why), settings, seed, outputs (path + SHA-256), seconds, error.  A
re-run skips files whose latest manifest line has the same audio and text
hashes and settings, no error, and outputs on disk with the recorded hashes
(resume): editing a line's text re-generates that line.  Lines whose text
did not fit the speech are listed as they finish.
A bad file is an error line, never the end of the batch; the exit status
is non-zero only when some file failed.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".m4a"}
#: CLI options that change a file's outputs (recorded in the manifest; a change re-generates).
SETTINGS = ("style", "seed", "guidance", "steps", "fps", "device", "preset", "no_preview", "character", "armature",
            "root_motion", "adjust", "mouth", "closure", "expression", "head", "gesture", "root", "smooth_face",
            "smooth_body", "blink_rate")
MANIFEST = "manifest.jsonl"
PARTIAL = ".partial"
#: Test hook: a fake disk of this many bytes under DIR (the "quota-free fake" of a full disk).
FAKE_QUOTA_ENV = "COSPEECH_FAKE_DISK_BYTES"


class BatchError(RuntimeError):
    """The batch cannot start (no files, unreachable cluster …); the message says why."""


def discover(src: Path) -> list[tuple[Path, str]]:
    """Audio files under ``src`` (recursive, sorted) with unique output names.

    ``sub/line.wav`` → ``sub__line``; if two files still share a name (same
    stem, different extensions), the extension is appended (``line_wav``).
    Hidden files and folders are skipped."""
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in AUDIO_EXT and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(src).parts))
    names = ["__".join(p.relative_to(src).with_suffix("").parts) for p in files]
    dup = {n for n in names if names.count(n) > 1}
    names = [f"{n}_{p.suffix.lower().lstrip('.')}" if n in dup else n for n, p in zip(names, files)]
    return list(zip(files, names))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def settings_of(args) -> dict:
    return {k: getattr(args, k, None) for k in SETTINGS}


def load_manifest(out: Path) -> dict[str, dict]:
    """Latest manifest record per input path (torn last lines of a killed driver are ignored)."""
    latest: dict[str, dict] = {}
    path = out / MANIFEST
    if not path.exists():
        return latest
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            latest[rec["input"]] = rec
        except (ValueError, KeyError):
            continue
    return latest


def text_hash(audio: Path) -> str:
    """SHA-256 of the dialogue text beside ``audio`` (``NAME.txt``, folder mode's
    convention), "" when there is none.  Raises OSError when it cannot be read."""
    txt = Path(audio).with_suffix(".txt")
    return sha256(txt) if txt.is_file() else ""


def is_done(rec: dict | None, audio_hash: str, settings: dict, out: Path, text_sha: str = "") -> bool:
    """Whether ``rec`` already covers this file with these settings and text, outputs intact
    (a record without ``text_sha256``, from before texts were recorded, counts as no text)."""
    if not rec or rec.get("error") or rec.get("audio_sha256") != audio_hash or rec.get("settings") != settings:
        return False
    if rec.get("text_sha256", "") != text_sha:
        return False
    for o in rec.get("outputs", {}).values():
        p = out / o["path"]
        if not p.is_file() or sha256(p) != o["sha256"]:
            return False
    return bool(rec.get("outputs"))


# ------------------------------------------------------------------ worker side
_PACKAGE = None


def _package():
    global _PACKAGE
    if _PACKAGE is None:
        sys.path.insert(0, str(REPO / "tools"))
        import headless
        _PACKAGE = headless.load_package()
        _PACKAGE.register()
    return _PACKAGE


def _used_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def _commit(stage: Path, final: Path, out: Path) -> dict:
    """Move every file of ``stage`` into ``final`` (``os.replace``: atomic); returns the outputs."""
    quota = os.environ.get(FAKE_QUOTA_ENV)
    if quota and _used_bytes(out) > int(quota):
        raise OSError(errno.ENOSPC, "No space left on device (fake disk of "
                                    f"{int(quota)} bytes, {FAKE_QUOTA_ENV})", str(out))
    final.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for f in sorted(stage.iterdir()):
        kind = {".npz": "npz", ".fbx": "fbx", ".glb": "glb", ".png": "preview"}.get(f.suffix)
        if kind is None:
            continue
        digest = sha256(f)
        os.replace(f, final / f.name)
        outputs[kind] = {"path": str((final / f.name).relative_to(out)), "sha256": digest}
    return outputs


def process_file(audio: str, name: str, out: str, args_dict: dict) -> dict:
    """Generate one file (in the calling process: a worker, or the CLI itself).

    Never raises for a bad file: the error is in the returned record."""
    import argparse
    t0 = time.perf_counter()
    out_p, audio_p = Path(out), Path(audio)
    rec = {"input": str(audio_p), "name": name, "audio_sha256": None, "text_sha256": None, "phones": None,
           "settings": {k: args_dict.get(k) for k in SETTINGS},
           "seed": args_dict.get("seed"), "outputs": {}, "seconds": None, "error": None, "pid": os.getpid()}
    stage = out_p / PARTIAL / name
    try:
        rec["audio_sha256"] = sha256(audio_p)
        rec["text_sha256"] = text_hash(audio_p)
        if audio_p.stat().st_size == 0:
            raise ValueError("empty file")
        _package()
        import headless
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        args = argparse.Namespace(**args_dict)
        rec["phones"] = headless.generate_one(audio_p, stage, args, batch_name=name).get("phones") or None
        rec["outputs"] = _commit(stage, out_p / name, out_p)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        rec["error"] = f"{type(exc).__name__}: {exc}".strip()
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


# ------------------------------------------------------------------ driver side
def _append(out: Path, rec: dict) -> None:
    line = json.dumps(rec, sort_keys=True) + "\n"
    with open(out / MANIFEST, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast with a clear message when ``HOST:PORT`` does not answer (Ray's
    own connect would wait a minute or more)."""
    host, _, port = address.replace("ray://", "").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise BatchError(f"cannot reach the Ray cluster at {address}: {exc} "
                         "(start one with `ray start --head`, or use --workers N for local workers)") from exc


def run_batch(src: Path, out: Path, args, workers: int | None = None, cluster: str | None = None) -> int:
    """Generate every audio file under ``src`` into ``out``; returns the exit status
    (0: all files done, 1: some failed).

    Raises:
        BatchError: no audio files, an unwritable ``out``, an unreachable cluster.
    """
    from tqdm import tqdm
    files = discover(src)
    if not files:
        raise BatchError(f"no audio files in {src} (looked for {', '.join(sorted(AUDIO_EXT))})")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST).touch()
    except OSError as exc:
        raise BatchError(f"cannot write to {out}: {exc.strerror or exc}") from exc
    settings = settings_of(args)
    args_dict = {k: getattr(args, k) for k in vars(args)}
    latest = load_manifest(out)
    todo = []
    for path, name in files:
        try:
            h, t = sha256(path), text_hash(path)
        except OSError:
            h = t = None
        if h is not None and is_done(latest.get(str(path)), h, settings, out, t):
            continue
        todo.append((path, name))
    skipped = len(files) - len(todo)
    failed = 0
    bar = tqdm(total=len(todo), desc="CoSpeech batch", unit="file", dynamic_ncols=True)
    if skipped:
        tqdm.write(f"resume: {skipped} of {len(files)} files already done (manifest matches), skipping them")

    def finished(rec):
        nonlocal failed
        try:
            _append(out, rec)
        except OSError as exc:
            raise BatchError(f"cannot append to {out / MANIFEST}: {exc.strerror or exc}") from exc
        if rec["error"]:
            failed += 1
            tqdm.write(f"{rec['input']}: FAILED: {rec['error']}")
        elif rec.get("text_sha256") and "not aligned" in (rec.get("phones") or ""):
            tqdm.write(f"{rec['input']}: {rec['phones']}")     # its NAME.txt did not fit: the take is made anyway
        bar.update(1)

    try:
        if workers is None and cluster is None:
            for path, name in todo:
                finished(process_file(str(path), name, str(out), args_dict))
        else:
            _run_ray(todo, out, args_dict, workers, cluster, finished)
    finally:
        bar.close()
        shutil.rmtree(out / PARTIAL, ignore_errors=True)
    print(f"batch done: {len(files) - failed} of {len(files)} files → {out} "
          f"({skipped} skipped as done, {failed} failed; manifest {out / MANIFEST})")
    return 1 if failed else 0


def _run_ray(todo, out: Path, args_dict: dict, workers: int | None, cluster: str | None, finished) -> None:
    import ray
    import headless
    env = {"PYTHONPATH": os.pathsep.join([str(REPO / "tools"), str(REPO)]), **headless.REPRODUCIBLE_ENV}
    for k in (FAKE_QUOTA_ENV,):
        if k in os.environ:
            env[k] = os.environ[k]
    if cluster is not None:
        check_address(cluster)
        ray.init(address=cluster, runtime_env={"env_vars": env}, logging_level="ERROR", log_to_driver=False)
    else:
        ray.init(num_cpus=int(workers), include_dashboard=False, runtime_env={"env_vars": env},
                 logging_level="ERROR", log_to_driver=False)
    try:
        # system failures (a killed worker process) are retried; a bad file is a record, not an exception
        task = ray.remote(num_cpus=1, max_retries=3)(process_file)
        pending = {task.remote(str(p), n, str(out), args_dict): (p, n) for p, n in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                path, name = pending.pop(ref)
                try:
                    rec = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - retries exhausted: the file failed, the batch goes on
                    rec = {"input": str(path), "name": name, "audio_sha256": None,
                           "settings": {k: args_dict.get(k) for k in SETTINGS},
                           "seed": args_dict.get("seed"), "outputs": {}, "seconds": None,
                           "error": f"worker lost: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
                finished(rec)
    finally:
        ray.shutdown()
