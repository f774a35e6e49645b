"""Training data at scale: index a BEAT2-layout tree once (cached), split it by
speaker, and stream training windows without loading the tree into memory.

Never imports bpy.

Layout (Liu et al., "EMAGE", CVPR 2024): ``ROOT/smplxflame_30/<name>.npz`` with
``ROOT/wave16k/<name>.wav`` (sub-folders allowed, mirrored in both).  BEAT2
names files ``<speaker id>_<speaker>_<...>`` (``2_scott_0_1_1``): the speaker
is the first two fields.

Index: per file its name, speaker, paths, frame count and frame rate, read
from the npz's ``poses.npy`` header and ``mocap_frame_rate`` member (no
array is loaded).  Cached as JSON (``ROOT/.cospeech_index.json``, or
``cache=`` when ROOT is read-only), keyed by file size and mtime, so a
re-run only reads new or changed files.

Streaming (:class:`StreamingDataset`): each training step draws its windows
from a few clips (``files_per_batch``, chosen with probability ∝ frames);
clips are decoded on first use (motion, audio features, the mirrored
version) and kept in a small LRU cache (``cache_files``), so memory is
bounded by the cache, not the tree.  The normaliser and the energy terciles
of the style labels are fitted on a seeded sample of ``sample_files`` clips.
With ``speakers=True`` each window also carries its speaker's id (index into
the sorted training speakers) for a speaker-conditioned network.
"""
from __future__ import annotations

import json
import os
import time
import zipfile
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

INDEX_VERSION = 1
INDEX_NAME = ".cospeech_index.json"


@dataclass(frozen=True)
class Entry:
    """One clip of the tree (paths relative to the tree's root)."""
    name: str
    speaker: str
    npz: str
    wav: str
    frames: int
    fps: float


def speaker_of(name: str) -> str:
    """BEAT2 speaker of a file name: its first two ``_`` fields (``2_scott_0_1_1`` → ``2_scott``)."""
    parts = name.split("_")
    return "_".join(parts[:2]) if len(parts) >= 2 else name


def npz_frames(path: str | os.PathLike) -> tuple[int, float]:
    """(frames, fps) of a BEAT2 npz from its headers only.

    Raises:
        ValueError: no ``poses`` member, or not a readable npz.
    """
    try:
        with zipfile.ZipFile(path) as z:
            with z.open("poses.npy") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, _ = read(f)
            fps = 30.0
            if "mocap_frame_rate.npy" in z.namelist():
                with z.open("mocap_frame_rate.npy") as f:
                    fps = float(np.lib.format.read_array(f, allow_pickle=False))
    except (KeyError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a BEAT2 motion npz ({exc})") from exc
    return int(shape[0]), fps


def build_index(root: str | os.PathLike, cache: str | os.PathLike | None = None, log=print) -> list[Entry]:
    """Index the tree at ``root`` (see module doc); unreadable files are skipped with a message.

    Raises:
        FileNotFoundError: no npz with a matching wav under ``root``.
    """
    root = Path(root)
    cache = Path(cache) if cache is not None else root / INDEX_NAME
    old = {}
    try:
        doc = json.loads(cache.read_text())
        if doc.get("version") == INDEX_VERSION:
            old = doc.get("files", {})
    except (OSError, ValueError):
        pass
    files, entries, reused = {}, [], 0
    motion_root = root / "smplxflame_30"
    for npz in sorted(motion_root.rglob("*.npz")):
        rel = npz.relative_to(motion_root)
        wav = root / "wave16k" / rel.with_suffix(".wav")
        if not wav.is_file():
            continue
        st = npz.stat()
        key = str(rel)
        rec = old.get(key)
        if rec and rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns:
            reused += 1
        else:
            try:
                frames, fps = npz_frames(npz)
            except ValueError as exc:
                log(f"skip {exc}")
                continue
            rec = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "frames": frames, "fps": fps}
        files[key] = rec
        entries.append(Entry(npz.stem, speaker_of(npz.stem), str(npz.relative_to(root)), str(wav.relative_to(root)),
                             int(rec["frames"]), float(rec["fps"])))
    if not entries:
        raise FileNotFoundError(f"no smplxflame_30/*.npz with a matching wave16k/*.wav under {root}")
    try:
        tmp = cache.with_name(cache.name + ".tmp")
        tmp.write_text(json.dumps({"version": INDEX_VERSION, "files": files}))
        os.replace(tmp, cache)
    except OSError as exc:
        log(f"note: index not cached ({exc}); pass cache= to keep it elsewhere")
    log(f"index: {len(entries)} clips, {len({e.speaker for e in entries})} speakers, "
        f"{sum(e.frames / e.fps for e in entries) / 3600:.2f} h ({reused} from the cache)")
    return entries


def split_by_speaker(entries: list[Entry], holdout: int | list[str], seed: int = 0) -> tuple[list, list]:
    """(training, held-out) entries; whole speakers are held out: ``holdout`` is
    a count (drawn with ``seed``) or a list of speaker ids."""
    speakers = sorted({e.speaker for e in entries})
    if isinstance(holdout, int):
        if holdout >= len(speakers):
            raise ValueError(f"cannot hold out {holdout} of {len(speakers)} speakers")
        held = set(np.random.default_rng(seed).choice(speakers, holdout, replace=False).tolist()) if holdout else set()
    else:
        held = set(holdout)
        unknown = held - set(speakers)
        if unknown:
            raise ValueError(f"unknown speakers {sorted(unknown)}; the tree has {speakers}")
    return [e for e in entries if e.speaker not in held], [e for e in entries if e.speaker in held]


class StreamingDataset:
    """Training windows streamed from indexed clips (module doc); the interface
    of ``model.training.train.Dataset``: ``batch``, ``norm``, ``thresholds``, ``sources``."""

    def __init__(self, root, entries: list[Entry], window: int, *, sample_files: int = 8, cache_files: int = 8,
                 files_per_batch: int = 4, seed: int = 0, speakers: bool = False, log=print,
                 visemes: bool = False, viseme_dropout: float = 0.0, phones: bool = False):
        from .windows import fit_norm_and_terciles
        self.root, self.window = Path(root), window
        self.entries = [e for e in entries if e.frames / e.fps * 30.0 >= window + 2]
        if not self.entries:
            raise ValueError(f"no clip is longer than the window ({window} frames)")
        self.sources = [e.name for e in self.entries]
        #: training speakers (sorted); ``batch`` adds their ids when ``speakers`` is True
        self.speakers = sorted({e.speaker for e in self.entries})
        self.with_speakers = speakers
        self.visemes, self.viseme_dropout, self.phones = visemes, viseme_dropout, phones
        self.cache_files, self.files_per_batch = cache_files, files_per_batch
        self._cache: OrderedDict[int, tuple] = OrderedDict()
        self.loads = 0
        t = time.time()
        rng = np.random.default_rng([seed, 0x5A])
        sample = rng.choice(len(self.entries), min(sample_files, len(self.entries)), replace=False)
        self.norm, self.thresholds = fit_norm_and_terciles([self._read(int(i), with_audio=False)[0] for i in sample],
                                                           window)
        w = np.array([e.frames / e.fps for e in self.entries], np.float64)
        self.p = w / w.sum()
        log(f"streaming {len(self.entries)} clips; normaliser and energy terciles from {len(sample)} "
            f"({time.time() - t:.1f} s); cache {cache_files} clips")

    def _read(self, i: int, with_audio: bool = True):
        from ..features import FPS, SAMPLE_RATE
        from ..motion import MotionClip
        e = self.entries[i]
        clip = MotionClip.load(self.root / e.npz)
        if abs(clip.fps - FPS) > 1e-6:
            clip = clip.resample(FPS)
        wave = None
        if with_audio:
            import librosa
            wave, _ = librosa.load(str(self.root / e.wav), sr=SAMPLE_RATE, mono=True)
        return clip, wave

    def _get(self, i: int) -> tuple:
        """(x, audio feats, speed cumsum) for the clip and its mirror, via the LRU cache."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        from ..features import SAMPLE_RATE, network_features
        from ..representation import mirror_clip
        from .windows import upper_body_speed
        clip, wave = self._read(i)
        feats = network_features(wave, SAMPLE_RATE, visemes=self.visemes, phones=self.phones)[1]
        T = min(clip.num_frames, feats.shape[0])
        versions = []
        for c in (clip, mirror_clip(clip)):
            versions.append((self.norm.encode(c)[:T], feats[:T],
                             np.concatenate([[0], np.cumsum(upper_body_speed(c)[:T])])))
        self._cache[i] = tuple(versions)
        self.loads += 1
        while len(self._cache) > self.cache_files:
            self._cache.popitem(last=False)
        return self._cache[i]

    def batch(self, rng: np.random.Generator, B: int):
        import torch
        from .windows import STYLE_IDS, drop_visemes, random_mask
        W = self.window
        files = rng.choice(len(self.entries), min(self.files_per_batch, len(self.entries)), replace=False, p=self.p)
        xs, aus, st, ms, sp = [], [], [], [], []
        for _ in range(B):
            i = int(files[rng.integers(len(files))])
            sp.append(self.speakers.index(self.entries[i].speaker))
            mirrored = bool(rng.integers(2))
            x, a, cs = self._get(i)[int(mirrored)]
            s = int(rng.integers(0, x.shape[0] - W + 1))
            xs.append(x[s:s + W])
            aus.append(a[s:s + W])
            if mirrored:
                st.append(STYLE_IDS.index("left_mirror"))
            else:
                st.append(int(np.searchsorted(self.thresholds, (cs[s + W] - cs[s]) / W)))
            ms.append(random_mask(rng, W))
        aus = drop_visemes(np.stack(aus), rng, self.viseme_dropout) if self.visemes else np.stack(aus)
        from ..representation import ARKIT_COLUMNS, FRAME_DIM
        cols = np.ones((B, FRAME_DIM), np.float32)
        cols[:, ARKIT_COLUMNS] = 0.0           # BEAT2 has no ARKit mouth: not supervised
        return (torch.from_numpy(np.stack(xs)), torch.from_numpy(aus), torch.tensor(st, dtype=torch.long),
                torch.from_numpy(np.stack(ms)), torch.tensor(sp, dtype=torch.long) if self.with_speakers else None,
                torch.from_numpy(cols))

    def describe(self) -> dict:
        return {"clips": len(self.entries), "cache_files": self.cache_files, "loads": self.loads,
                "entries_example": asdict(self.entries[0])}
