"""Generators of small test data: audio signals, audio files and model bundles."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import soundfile as sf
import torch

from serapp.bundle import BundleMeta, save_bundle, tensors_digest
from serapp.features import FrontEndConfig
from serapp.labels import EMOTIONS
from serapp.models import build_model


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 440.0, amp: float = 0.5,
         noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A sine with optional white noise, float32 mono."""
    t = np.arange(int(round(seconds * rate))) / rate
    y = amp * np.sin(2 * np.pi * freq * t)
    if noise:
        y = y + noise * np.random.default_rng(seed).standard_normal(t.size)
    return y.astype(np.float32)


def speechlike(seconds: float = 2.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a moving pitch, syllable-like amplitude envelope and some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    y = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.2 * y * env + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_audio(path, samples: np.ndarray, rate: int = 16000, subtype: str | None = None, format: str | None = None):
    sf.write(str(path), samples, rate, subtype=subtype, format=format)
    return path


def make_bundle(path, labels=EMOTIONS, frontend: FrontEndConfig | None = None, window_s: float = 1.0,
                seed: int = 0, readout: dict | None = None, **hparams):
    torch.manual_seed(seed)
    frontend = frontend or FrontEndConfig(normalize=True)
    hparams = {"channels": 16, "blocks": 2, **hparams}
    model = build_model("tcn", frontend.n_features, len(labels), hparams).eval()
    meta = BundleMeta(architecture="tcn", labels=list(labels), frontend=frontend, window_s=window_s,
                      training={"data": "random init (test)", "protocol": "none"}, readout=readout or {})
    save_bundle(path, model, meta)
    return path, model



# --- tiny synthetic emotion corpora ------------------------------------------------------------

# Class cues a small model can hear: pitch level and contour differ per class.
SYNTH_CLASSES = {"neutral": (1.0, 0.0), "happy": (1.8, 0.5), "sad": (0.8, -0.3), "angry": (2.6, 0.0)}
# Cues for the other labels, for corpora that have them (not in the default four).
MORE_CLASSES = {"fearful": (3.2, 0.3), "disgust": (0.9, 0.3), "surprised": (2.2, 0.9), "calm": (1.0, 0.0)}
RAVDESS_CODES = {"neutral": "01", "calm": "02", "happy": "03", "sad": "04", "angry": "05",
                 "fearful": "06", "disgust": "07", "surprised": "08"}


def synth_emotion(label: str, speaker: int, rep: int, seconds: float = 0.6, rate: int = 16000) -> np.ndarray:
    """A voiced sound whose pitch level/slope encode the class; speakers differ in base pitch."""
    level, slope = SYNTH_CLASSES.get(label) or MORE_CLASSES[label]
    rng = np.random.default_rng(zlib.crc32(f"{label}-{speaker}-{rep}".encode()))
    t = np.arange(int(seconds * rate)) / rate
    base = 110 + 7 * (speaker % 6)
    f0 = base * level * (1 + slope * t / seconds) * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    y = sum(np.sin(k * phase) / k for k in range(1, 6))
    env = np.minimum(1, np.minimum(t, seconds - t) * 20)
    return (0.2 * env * y + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def make_ravdess_corpus(root, actors=range(1, 9), labels=tuple(SYNTH_CLASSES), reps=2, rate=16000, ext="wav",
                        seconds=0.6):
    """Files named 03-01-EE-II-SS-RR-AA.<ext> under Actor_AA/, as in the RAVDESS release."""
    for a in actors:
        folder = root / f"Actor_{a:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for label in labels:
            for r in range(reps):
                statement, repetition = 1 + r % 2, 1 + (r // 2) % 2
                name = f"03-01-{RAVDESS_CODES[label]}-01-{statement:02d}-{repetition:02d}-{a:02d}.{ext}"
                sf.write(str(folder / name), synth_emotion(label, a, r, seconds, rate), rate)
    return root


# --- the other corpora's naming schemes -------------------------------------------------------

NEMO_NAMES = {"neutral": "neutral", "happy": "happiness", "sad": "sadness", "angry": "anger",
              "fearful": "fear", "surprised": "surprised"}
URDU_CODES = {"neutral": "N", "happy": "H", "sad": "S", "angry": "A"}
TUREV_CODES = {"calm": "sk", "happy": "mt", "sad": "hl", "angry": "kz"}
TESS_NAMES = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fearful": "fear",
              "disgust": "disgust", "surprised": "ps"}


def corpus_file_name(corpus: str, label: str, speaker: int, rep: int, ext: str = "wav") -> str:
    """A file name (relative path) as the corpus' own release names it."""
    if corpus == "ravdess":
        statement, repetition = 1 + rep % 2, 1 + (rep // 2) % 2
        return f"Actor_{speaker:02d}/03-01-{RAVDESS_CODES[label]}-01-{statement:02d}-{repetition:02d}-{speaker:02d}.{ext}"
    if corpus == "nemo":
        return f"samples/{nemo_speaker(speaker)}_{NEMO_NAMES[label]}_{rep + 1}.{ext}"
    if corpus == "urdu":
        sex = "M" if speaker % 2 else "F"
        return f"{label.capitalize()}/S{sex}{speaker}_F{rep + 1}_{URDU_CODES[label]}{rep + 1:03d}.{ext}"
    if corpus == "turev-db":
        return f"{label.capitalize()}/{1000 + speaker}_{TUREV_CODES[label]}_kelime{rep}.{ext}"
    if corpus == "tess":
        spk = ("OAF", "YAF")[speaker % 2]
        return f"{spk}_{TESS_NAMES[label]}/{spk}_word{rep}_{TESS_NAMES[label]}.{ext}"
    if corpus == "ased":  # <NN><Emotion>/<e><N>-<sentence>-<repetition>-<gender>-<speaker>
        n = ASED_FOLDERS.index(label) + 1
        return f"{n:02d}{label.capitalize()}/{label[0]}{n}-{rep + 1:02d}-01-{1 + speaker % 2:02d}-{speaker:02d}.{ext}"
    if corpus == "emovo":  # <speaker>/<emotion>-<speaker>-<sentence>
        spk = f"{'mf'[speaker % 2]}{1 + speaker // 2}"
        return f"{spk}/{EMOVO_NAMES[label]}-{spk}-b{rep + 1}.{ext}"
    raise ValueError(corpus)


ASED_FOLDERS = ["neutral", "fearful", "happy", "sad", "angry"]
EMOVO_NAMES = {"neutral": "neu", "happy": "gio", "fearful": "pau", "sad": "tri", "angry": "rab", "disgust": "dis",
               "surprised": "sor"}


def nemo_speaker(speaker: int) -> str:
    return f"{chr(65 + speaker % 26)}{chr(65 + speaker // 26)}0"


def make_corpus(root, corpus: str, speakers, labels, reps=2, ext="wav", rate=16000, seconds=0.6, offset=0):
    """A tiny corpus named per `corpus`' scheme; the class cue is synth_emotion's (calm sounds
    like neutral). `offset` shifts the speakers' voices, so two corpora can differ in sound."""
    root.mkdir(parents=True, exist_ok=True)
    for s in speakers:
        for label in labels:
            for r in range(reps):
                path = root / corpus_file_name(corpus, label, s, r, ext)
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(path), synth_emotion(label, s + offset, r, seconds, rate), rate)
    if corpus == "nemo":  # nEMO's own table of speakers (the loader takes their sex from it)
        rows = ["file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage"]
        for s in speakers:
            rows.append(f"{nemo_speaker(s)}_neutral_1.wav\tneutral\tx\tx\t        {nemo_speaker(s)}\t"
                        f"{'male' if s % 2 else 'female'}\t30")
        (root / "data.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


WHISPER_FE = FrontEndConfig(kind="whisper", n_fft=400, win_length=400, hop_length=160, n_mels=80, normalize=False)


def tiny_whisper_folder(path: Path, blocks: int = 2, width: int = 32, heads: int = 2) -> Path:
    """An encoder file as the published one is laid out: openai-whisper's names, float16, dims."""
    from safetensors.torch import save_file

    from serapp.models.whisper import WhisperDims, WhisperEncoder, sinusoids

    torch.manual_seed(0)
    enc = WhisperEncoder(WhisperDims(width=width, heads=heads, n_blocks=blocks), post_ln=True)
    state = {k: v.half() for k, v in enc.state_dict().items()}
    state["positional_embedding"] = sinusoids(1500, width).half()
    dims = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": width, "n_audio_head": heads, "n_audio_layer": blocks}
    path.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path / "encoder.safetensors"), metadata={"dims": json.dumps(dims)})
    return path


def tiny_whisper_model(folder, n_classes=4, **hp):
    """A Whisper-backed model on a tiny encoder folder (2 blocks, width 32)."""
    torch.manual_seed(1)
    return build_model("speech_encoder", 80, n_classes, {"backbone": "whisper", "encoder_dir": str(folder), "blocks": 2,
                                                         "pooling": "mean+std", "speaker_norm": True, "hidden": 8, **hp})


def rewrite_bundle(path, out, meta_edit=None, tensor_edit=None, raw_metadata=None):
    """Copy a bundle, changing its metadata JSON or tensors, keeping the file otherwise valid."""
    with safetensors.safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta_edit:
        meta = json.loads(metadata["meta"])
        meta_edit(meta)
        metadata["meta"] = json.dumps(meta)
    if tensor_edit:
        tensor_edit(tensors)
        metadata["weights_sha256"] = tensors_digest(tensors)
    if raw_metadata is not None:
        metadata = raw_metadata(metadata)
    safetensors.torch.save_file(tensors, str(out), metadata=metadata)
    return out
