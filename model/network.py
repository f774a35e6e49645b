"""The CoSpeech denoiser: one transformer trunk shared by face and body.

Pure PyTorch; never imports bpy.

Design (documented here because it is the contract with ``flow.py``):

* **Modalities and adapters.**  Each frame vector (``representation.py``)
  is split into a *body* block (52 joints 6D + trans, 315 values), a
  *face* block (jaw + eyes 6D + 100 FLAME expressions, 118 values) and an
  *ARKit mouth* block (27 ARKit mouth and jaw blend-shape weights, supervised
  by FACEGOOD's hand-animated mouth).  Each
  modality has its own small input adapter (a 2-layer MLP) that maps
  ``[x_t, x_known * mask, mask]`` of that modality into the shared
  ``d_model`` latent space, and its own output head mapping the trunk output
  back to that modality.  The three adapter outputs are **summed into one
  token per frame** (one shared latent space; a sequence of ``T`` tokens),
  so every trunk layer mixes face and body with the same weights (the
  "shared weights + small per-modality adapters" idea of the seed paper).
  Summing instead of interleaving two tokens per frame halves the sequence
  length, which roughly halved training time per step on our 1-core budget.
* **Trunk.**  ``n_layers`` pre-norm blocks of self-attention (all ``2T``
  tokens), cross-attention to audio tokens, and an MLP.  Cross-attention is
  banded: a frame token attends only to audio frames within
  ``audio_window`` frames of it, which keeps lip sync local and lets the
  network run on windows of any length.  Timestep, style and global
  conditioning enter by adaptive layer norm (scale/shift from an MLP of the
  timestep + style embedding, as in DiT, Peebles & Xie 2023).
* **Audio encoder.**  Linear + two 1-D convolutions (kernel 5) over the 30 fps
  features, plus sinusoidal positions (the "coarse" context; the banded
  cross-attention is the "fine" alignment -- a light version of MoDA's
  coarse-to-fine fusion).
* **Mouth pathway** (``face_audio``).  Lip sync needs a sharp, local map
  from sound to mouth; through the shared token and ±10-frame attention the
  first network barely articulated (phoneme contrast ~0 where a linear
  ridge map of the same features reaches ~1, ``model/training/lipsync_eval.py``).  So
  the face head's output is the trunk term *plus* a term of the frame's own
  audio encoding only (``mouth``: LayerNorm → MLP over the audio encoder's
  output, which sees ±4 frames through its convolutions).  In the
  clean-sample (x1) parameterisation that term learns the conditional mean
  of the face given the local sound -- a regression-style mouth -- and the
  trunk adds the x_t-dependent, seed-varying part.  Dropping the audio for
  classifier-free guidance replaces its input by the null token too, so
  guidance amplifies articulation.  The term covers the face and the ARKit
  mouth blocks (one MLP, FACE_DIM + MOUTH_DIM outputs).  The body head is unchanged.
  With ``mouth_phonetic`` the term reads its own encoder of only the
  speaker-independent columns -- the 15 viseme one-hots and 4 loudness
  columns (``MOUTH_AUDIO_COLUMNS``), Linear + a ±4-frame convolution -- instead of
  the shared audio encoding, so the regression mouth cannot lean on a
  speaker's log-mel spectrum (51 s of one English speaker); dropped audio
  removes the term.  With ``phones`` it also reads the 39 ARPAbet one-hots.
* **Classifier-free guidance.**  ``drop_audio`` / ``drop_style`` (bool per
  batch item) replace audio tokens by a learned null token and the style by
  a null style id; training drops them at random.
* **Masked conditioning.**  ``x_known`` (normalised frames) and ``mask``
  (1 = frame known) are inputs to the adapters, so the same network
  generates from scratch (mask all 0), continues a window (prefix known) or
  in-paints a range (both sides known) and respects locked keys.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .features import FEATURE_DIM, FEATURE_NAMES, LOUDNESS_NAMES
from .phones import PHONE_DIM, VISEME_DIM
from .representation import BODY_DIM, FACE_DIM, MOUTH_DIM


#: Audio columns the phonetic mouth term reads: loudness (per-clip normalised) + the 15 visemes.
MOUTH_AUDIO_COLUMNS: tuple[int, ...] = (tuple(FEATURE_NAMES.index(n) for n in LOUDNESS_NAMES)
                                        + tuple(range(FEATURE_DIM, FEATURE_DIM + VISEME_DIM)))
#: The 39 ARPAbet columns after the visemes (``NetConfig.phones``).
PHONE_COLUMNS: tuple[int, ...] = tuple(range(FEATURE_DIM + VISEME_DIM, FEATURE_DIM + VISEME_DIM + PHONE_DIM))


@dataclass
class NetConfig:
    """Hyper-parameters (saved in ``cospeech.json``)."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    ff_mult: int = 2
    audio_dim: int = FEATURE_DIM
    n_styles: int = 4
    audio_window: int = 10   # frames each side for banded cross-attention
    dropout: float = 0.1
    #: Face head also reads the frame's local audio encoding (a deterministic,
    #: audio-only mouth term; see the module doc).  False for weights trained
    #: before it existed (their cospeech.json has no such key).
    face_audio: bool = False
    #: Speaker-identity embedding (training at scale, ``model.training.train --stream
    #: --speaker-condition``): ids 0..n_speakers-1, id n_speakers = any
    #: speaker (used when none is given, and for dropped styles); 0 = none.
    n_speakers: int = 0
    #: The audio input ends with the 15 viseme one-hots of PocketSphinx phones
    #: (``features.network_features(visemes=True)``; then ``audio_dim`` = 63).
    visemes: bool = False
    #: The mouth term reads only the viseme + loudness columns (module doc); needs ``visemes``.
    mouth_phonetic: bool = False
    #: The audio input also carries the 39 ARPAbet phone one-hots after the
    #: visemes (``features.network_features(phones=True)``; ``audio_dim`` 102);
    #: the phonetic mouth term reads them too.  Needs ``visemes``.
    phones: bool = False
    #: The ARKit mouth output also adds a term of the frame's shared audio
    #: encoding (log-mel included; ``a_local``, as ``face_audio``), beside the phonetic one.
    arkit_audio: bool = False

    def to_json(self) -> dict:
        return asdict(self)


def sinusoid(pos: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(...,) float positions -> (..., dim) sin/cos embedding (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=pos.device, dtype=torch.float32) / half)
    ang = pos.float()[..., None] * freqs
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class Adapter(nn.Module):
    """Per-modality input adapter: [x_t, known*mask, mask] (2*n+1) -> d_model."""

    def __init__(self, n: int, d: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * n + 1, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, x, known, mask):
        return self.net(torch.cat([x, known * mask, mask], dim=-1))


class Block(nn.Module):
    """Pre-norm transformer block with adaLN modulation and banded audio cross-attention."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        d = cfg.d_model
        self.n1 = nn.LayerNorm(d, elementwise_affine=False)
        self.sa = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.n2 = nn.LayerNorm(d)
        self.ca = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.n3 = nn.LayerNorm(d, elementwise_affine=False)
        self.ff = nn.Sequential(nn.Linear(d, d * cfg.ff_mult), nn.GELU(), nn.Dropout(cfg.dropout),
                                nn.Linear(d * cfg.ff_mult, d))
        self.mod = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, h, cond, audio, ca_mask):
        s1, b1, g1, s3, b3, g3 = self.mod(cond)[:, None].chunk(6, dim=-1)
        y = self.n1(h) * (1 + s1) + b1
        h = h + (1 + g1) * self.sa(y, y, y, need_weights=False)[0]
        y = self.n2(h)
        h = h + self.ca(y, audio, audio, attn_mask=ca_mask, need_weights=False)[0]
        y = self.n3(h) * (1 + s3) + b3
        return h + (1 + g3) * self.ff(y)


class CoSpeechNet(nn.Module):
    """Denoiser x1_hat(x_t, t | audio, style, x_known, mask).

    Forward args:
        x: (B, T, FRAME_DIM) noisy normalised frames at flow time t.
        t: (B,) flow time in [0, 1] (0 = noise, 1 = data).
        audio: (B, T, audio_dim) per-clip normalised features, 30 fps, aligned with x.
        style: (B,) long style ids in [0, n_styles).
        x_known: (B, T, FRAME_DIM) normalised known frames (anything where mask=0).
        mask: (B, T) float, 1 = frame known.
        drop_audio, drop_style: (B,) bool; True replaces the condition by its null.
        speaker: (B,) long speaker ids (``n_speakers`` > 0 only); None = any speaker.
    Returns:
        (B, T, FRAME_DIM) predicted clean sample x1 (normalised frames); see
        ``flow.py`` for how it becomes a velocity.
    """

    def __init__(self, cfg: NetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or NetConfig()
        d = cfg.d_model
        self.body_in = Adapter(BODY_DIM, d)
        self.face_in = Adapter(FACE_DIM, d)
        self.arkit_in = Adapter(MOUTH_DIM, d)
        self.body_out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, BODY_DIM))
        self.face_out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, FACE_DIM))
        self.arkit_out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, MOUTH_DIM))
        self.audio_in = nn.Linear(cfg.audio_dim, d)
        self.audio_conv = nn.Sequential(nn.Conv1d(d, d, 5, padding=2), nn.GELU(), nn.Conv1d(d, d, 5, padding=2))
        self.audio_null = nn.Parameter(torch.zeros(d))
        self.style = nn.Embedding(cfg.n_styles + 1, d)  # last id = null (dropped) style
        if cfg.n_speakers > 0:
            self.speaker = nn.Embedding(cfg.n_speakers + 1, d)  # last id = any speaker
        self.t_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        if cfg.face_audio or cfg.mouth_phonetic:
            self.mouth = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, FACE_DIM + MOUTH_DIM))
        if cfg.arkit_audio:
            self.arkit_audio_term = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, MOUTH_DIM))
        if cfg.phones and not cfg.visemes:
            raise ValueError("phones needs visemes")
        if cfg.mouth_phonetic:
            if not cfg.visemes:
                raise ValueError("mouth_phonetic needs visemes")
            cols = MOUTH_AUDIO_COLUMNS + (PHONE_COLUMNS if cfg.phones else ())
            self.register_buffer("mouth_cols", torch.tensor(cols), persistent=False)
            self.mouth_in = nn.Linear(len(cols), d)
            self.mouth_conv = nn.Conv1d(d, d, 9, padding=4)

    def encode_audio(self, audio, drop_audio):
        """(B, T, d) audio tokens (with positions) and the same without positions."""
        a = self.audio_in(audio)
        a = a + self.audio_conv(a.transpose(1, 2)).transpose(1, 2)
        a = torch.where(drop_audio[:, None, None], self.audio_null.expand_as(a), a)
        pos = sinusoid(torch.arange(a.shape[1], device=a.device), a.shape[-1])
        return a + pos, a

    def forward(self, x, t, audio, style, x_known, mask, drop_audio=None, drop_style=None, speaker=None):
        B, T, _ = x.shape
        dev = x.device
        if drop_audio is None:
            drop_audio = torch.zeros(B, dtype=torch.bool, device=dev)
        if drop_style is None:
            drop_style = torch.zeros(B, dtype=torch.bool, device=dev)
        m = mask[..., None].to(x.dtype)
        hb = self.body_in(x[..., :BODY_DIM], x_known[..., :BODY_DIM], m)
        F = BODY_DIM + FACE_DIM
        hf = self.face_in(x[..., BODY_DIM:F], x_known[..., BODY_DIM:F], m)
        hm = self.arkit_in(x[..., F:], x_known[..., F:], m)
        h = hb + hf + hm + sinusoid(torch.arange(T, device=dev), self.cfg.d_model)  # one token per frame
        a, a_local = self.encode_audio(audio, drop_audio)
        style = torch.where(drop_style, torch.full_like(style, self.cfg.n_styles), style)
        cond = self.t_mlp(sinusoid(t * 1000.0, self.cfg.d_model)) + self.style(style)
        if self.cfg.n_speakers > 0:     # the speaker is dropped with the style (classifier-free guidance)
            any_id = torch.full_like(style, self.cfg.n_speakers)
            sp = any_id if speaker is None else torch.where(drop_style, any_id, speaker)
            cond = cond + self.speaker(sp)
        frame = torch.arange(T, device=dev)
        ca_mask = (frame[:, None] - frame[None]).abs() > self.cfg.audio_window
        for blk in self.blocks:
            h = blk(h, cond, a, ca_mask)
        face = torch.cat([self.face_out(h), self.arkit_out(h)], dim=-1)
        if self.cfg.mouth_phonetic:
            m_in = self.mouth_in(audio.index_select(-1, self.mouth_cols))
            m_in = m_in + self.mouth_conv(m_in.transpose(1, 2)).transpose(1, 2)
            face = face + self.mouth(m_in) * (~drop_audio)[:, None, None].to(face.dtype)
        elif self.cfg.face_audio:
            face = face + self.mouth(a_local)
        if self.cfg.arkit_audio:
            face = face + torch.cat([torch.zeros_like(face[..., :FACE_DIM]), self.arkit_audio_term(a_local)], -1)
        return torch.cat([self.body_out(h), face], dim=-1)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def parameter_comparison(cfg: NetConfig | None = None) -> dict:
    """Parameters of the shared face+body net vs two single-modality nets.

    A single-modality net has the same trunk (blocks, audio encoder, style and
    timestep embeddings) but only one adapter/head pair; two of them (one body,
    one face) are what "separate networks of the same trunk size" costs.

    Returns:
        dict with ``shared``, ``separate_body``, ``separate_face``,
        ``separate_total`` and ``ratio`` (= shared / separate_total).
    """
    net = CoSpeechNet(cfg)
    total = count_parameters(net)
    face_parts = sum(count_parameters(m) for m in (net.face_in, net.face_out, net.arkit_in, net.arkit_out))
    if net.cfg.face_audio:
        face_parts += count_parameters(net.mouth)
    if net.cfg.arkit_audio:
        face_parts += count_parameters(net.arkit_audio_term)
    body_only = total - face_parts
    face_only = total - count_parameters(net.body_in) - count_parameters(net.body_out)
    return {"shared": total, "separate_body": body_only, "separate_face": face_only,
            "separate_total": body_only + face_only, "ratio": total / (body_only + face_only)}
