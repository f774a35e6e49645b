"""Plots of the evaluation reports (PNG, matplotlib with the Agg backend):
jaw opening against the audio envelope, joint speed, jaw and mouth curves
with the phones under them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..phones import BILABIALS, OPEN_VOWELS, Phone, centre_frames
from ..skeleton import UPPER_BODY

FPS = 30.0


def plot_jaw(path: Path, env: np.ndarray, curves: dict[str, np.ndarray], title: str) -> None:
    """PNG of jaw opening curves over the RMS envelope."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = min(len(env), min(len(c) for c in curves.values()), 600)
    t = np.arange(n) / FPS
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax2 = ax.twinx()
    ax2.fill_between(t, 0, env[:n], color="0.85", label="audio RMS")
    ax2.set_ylabel("RMS")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    for name, c in curves.items():
        ax.plot(t, c[:n], lw=1.0, label=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("jaw opening |poses[:,66]| (rad)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_speed(path: Path, curves: dict[str, np.ndarray], title: str) -> None:
    """PNG of upper-body speed curves (m/s)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for name, pos in curves.items():
        sp = np.linalg.norm(np.diff(pos[:, list(UPPER_BODY)], axis=0), axis=-1).mean(1) * FPS
        ax.plot(np.arange(len(sp)) / FPS, sp, lw=0.9, label=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("upper-body speed (m/s)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_phones(path: Path, curves: dict[str, np.ndarray], phones: list[Phone], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = max(len(c) for c in curves.values())
    fig, ax = plt.subplots(figsize=(14, 3.2))
    t = np.arange(n) / FPS
    for i, f in enumerate(centre_frames(phones, n, FPS, BILABIALS)):
        ax.axvline(f / FPS, color="tab:red", alpha=0.35, lw=1, label="P B M" if i == 0 else None)
    for i, f in enumerate(centre_frames(phones, n, FPS, OPEN_VOWELS)):
        ax.axvline(f / FPS, color="tab:green", alpha=0.25, lw=1, label="open vowel" if i == 0 else None)
    for name, c in curves.items():
        ax.plot(t[:len(c)], c, lw=1.2, label=name)
    ax.set_xlabel("seconds")
    ax.set_ylabel("jaw opening (rad)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
