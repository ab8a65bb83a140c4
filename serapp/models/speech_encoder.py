"""Pretrained speech encoders with a small head: each layer's output pooled over time, each
speaker's pooled features normalised by that speaker's statistics, a learned weighted sum of
the layers, a two-layer classifier.

Two backbones:
- `backbone = "whisper"`: Whisper's audio encoder in plain torch (serapp/models/whisper.py,
  MIT), its first `blocks` blocks, its weights inside the bundle (float16 on disk, float32 in
  memory). The trainer copies them once from `encoder_dir` (a folder with openai-whisper-named
  `encoder.safetensors`); a bundle needs no folder. Input: Whisper's log-mel (front-end kind
  "whisper").
- `backbone = "hf"`: wav2vec 2.0, HuBERT, WavLM through `transformers` (an optional extra).

Speaker normalisation (`speaker_norm`): the pooled features (layers x width) are z-scored
with a speaker's mean and standard deviation. The bundle stores population statistics
(`norm_mean`, `norm_std`: the cold start); serapp.adaptation estimates a voice's own.

A head for the basic four (`basic_head`): beside the full head, a second one of the same shape
with four outputs (serapp.readout.BASIC: neutral, happy, sad, angry), its own layer weights and
its own population statistics (`basic_norm_mean`, `basic_norm_std`: those of the windows it
trained on), trained on the clips of those emotions only (the encoder table's four-way recipe).
`classify(..., basic=True)` reads it; a voice's statistics, where given, normalise for both
heads. `forward` is the full head.

The encoder is read only from a local folder the user names, in the Hugging Face layout
(`config.json` and `model.safetensors` or `pytorch_model.bin`); nothing is ever downloaded.
The bundle records the folder and a SHA-256 of those files: on another machine, a missing or
different encoder is a one-line error naming the folder.

Frozen (the default), the encoder's weights stay out of the bundle and out of training; only
the head and the layer weights learn, and `ser-train` computes each clip's per-layer averages
once (trainer/frozen.py). Fine-tuned (`finetune = true`), the encoder trains and its weights
are in the bundle.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from serapp.models.int8 import Int8Encoder
from serapp.models.int8_check import check_graph, limits, max_graph_bytes
from serapp.models.whisper import LICENCE as WHISPER_LICENCE
from serapp.models.whisper import WhisperDims, WhisperEncoder, load_whisper_weights
from serapp.readout import BASIC

BACKBONES = ("hf", "whisper")
ADAPT_MODES = ("full", "mean")  # a voice's statistics replace the population's mean and std, or the mean only
# a voice's windows count alike, by how neutral the cold head reads them, or with the emotion the
# cold head reads taken off (serapp.adaptation)
ADAPT_WEIGHTINGS = ("", "neutral", "emotion-removed")
POOLINGS = ("mean", "mean+std")
LAYOUT = "a Hugging Face model folder: config.json and model.safetensors (or pytorch_model.bin)"


class EncoderUnavailable(ValueError):
    """The pretrained encoder a model needs cannot be had; the message names the folder."""


def encoder_files(folder: Path) -> list[Path]:
    weights = sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    return [folder / "config.json", *weights] if (folder / "config.json").is_file() and weights else []


def encoder_checksum(folder: str | Path) -> str:
    """SHA-256 over the encoder's config and weight files (names and bytes)."""
    h = hashlib.sha256()
    for path in encoder_files(Path(folder)):
        h.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def load_encoder(folder: str, checksum: str = "", weights: bool = True) -> nn.Module:
    """The encoder from `folder` (never the network); `weights=False` builds it from its config
    alone (no weights read: for checking a bundle before loading it)."""
    path = Path(folder).expanduser() if folder else None
    if path is None or not path.is_dir() or not encoder_files(path):
        where = f"{folder!r}" if folder else "(none given: set model.encoder_dir)"
        raise EncoderUnavailable(f"the pretrained speech encoder folder {where} is missing; this model needs "
                                 f"{LAYOUT}, as it was trained with (nothing is downloaded)")
    try:
        import transformers
    except ImportError:
        raise EncoderUnavailable("speech encoders need the transformers package: pip install 'serapp[encoders]'") from None
    if checksum and weights and encoder_checksum(path) != checksum:
        raise EncoderUnavailable(f"the speech encoder in {folder!r} is not the one this model was trained with "
                                 "(its files' SHA-256 differs)")
    config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    if not weights:
        return transformers.AutoModel.from_config(config)
    transformers.logging.set_verbosity_error()  # its progress bars and notices are not the user's business
    return transformers.AutoModel.from_pretrained(str(path), local_files_only=True)


def _forget_int8_session(module, incompatible_keys) -> None:
    module._int8 = None  # new bytes: a new session on next use, once they are checked (accept_int8)
    module._int8_frames = None


def _half_on_disk(module, state_dict, prefix, local_metadata) -> None:
    """The frozen Whisper weights are stored as float16 (as distributed); loading copies them
    back into float32 parameters."""
    for key, value in state_dict.items():
        if key.startswith(prefix) and value.is_floating_point():
            state_dict[key] = value.half()


class SpeechEncoderClassifier(nn.Module):
    """(batch, n_features, frames) -> logits: (batch, 1, samples) normalised waveform for "hf",
    (batch, 80, frames) Whisper log-mel for "whisper"."""

    frozen_encoder: bool

    def __init__(self, n_features: int, n_classes: int, encoder_dir: str = "", encoder_sha256: str = "",
                 finetune: bool = False, hidden: int = 128, dropout: float = 0.2, backbone: str = "hf",
                 blocks: int = 4, pooling: str = "mean", speaker_norm: bool = False, width: int = 512, heads: int = 8,
                 prior_windows: float = 10.0, int8_bytes: int = 0, concat_blocks: str = "", adapt: str = "full",
                 adapt_weighting: str = "", basic_head: bool = False):
        super().__init__()
        if backbone not in BACKBONES or pooling not in POOLINGS:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)} and pooling one of {', '.join(POOLINGS)}")
        if not isinstance(blocks, int) or isinstance(blocks, bool) or not 1 <= blocks <= 32:
            raise ValueError(f"blocks must be a whole number in [1, 32], not {blocks!r}")
        self.hparams = dict(encoder_dir=encoder_dir, encoder_sha256=encoder_sha256, finetune=finetune, hidden=hidden,
                            dropout=dropout, backbone=backbone, blocks=blocks, pooling=pooling, speaker_norm=speaker_norm,
                            width=width, heads=heads, prior_windows=prior_windows, int8_bytes=int8_bytes,
                            concat_blocks=concat_blocks, adapt=adapt, adapt_weighting=adapt_weighting,
                            basic_head=basic_head)
        check_basic_head(basic_head, finetune)
        self.has_basic_head = basic_head  # (`basic_head` is the head's module)
        if adapt not in ADAPT_MODES:
            raise ValueError(f"adapt must be one of {', '.join(ADAPT_MODES)}, not {adapt!r}")
        if adapt_weighting not in ADAPT_WEIGHTINGS:
            raise ValueError(f"adapt_weighting must be one of {', '.join(map(repr, ADAPT_WEIGHTINGS))}, "
                             f"not {adapt_weighting!r}")
        self.adapt_weighting = adapt_weighting  # how a voice's windows count (serapp.adaptation.neutral_weights)
        self.adapt = adapt  # what a voice's statistics replace of the population's (serapp.adaptation)
        if not isinstance(prior_windows, (int, float)) or isinstance(prior_windows, bool) or not 0 <= prior_windows <= 1e6:
            raise ValueError(f"prior_windows must be a number in [0, 1e6], not {prior_windows!r}")
        self.prior_windows = float(prior_windows)
        # no larger than the float encoder's weights: checked before the bytes are read
        most = max_graph_bytes(blocks, width) if isinstance(width, int) and not isinstance(width, bool) else 0
        if not isinstance(int8_bytes, int) or isinstance(int8_bytes, bool) or not 0 <= int8_bytes <= most:
            raise ValueError(f"int8_bytes must be a whole number in [0, {most}] for this encoder, not {int8_bytes!r}")
        if int8_bytes and (backbone != "whisper" or finetune):
            raise ValueError("an int8 encoder graph goes only with a frozen Whisper encoder")
        self.backbone = backbone
        self.pooling = pooling
        self.frozen_encoder = not finetune
        on_meta = torch.empty(0).device.type == "meta"  # a bundle being checked: no weights to read
        if backbone == "whisper":
            width, n_layers = self._whisper(n_features, encoder_dir, encoder_sha256, WhisperDims(
                n_mels=80, width=width, heads=heads, n_blocks=blocks).check(), on_meta)
        else:
            width, n_layers = self._hf(n_features, encoder_dir, encoder_sha256, on_meta)
        size = width * (2 if pooling == "mean+std" else 1)
        if speaker_norm:  # the population's statistics: the cold start (serapp.adaptation)
            self.register_buffer("norm_mean", torch.zeros(n_layers, size))
            self.register_buffer("norm_std", torch.ones(n_layers, size))
        self.speaker_norm = speaker_norm
        # The head reads the layers' learned weighted sum, or with `concat_blocks` ("2,3,4") those
        # blocks' pooled outputs side by side (block 0: after the convolutions).
        self.concat = parse_blocks(concat_blocks, n_layers)
        self.layer_weights = nn.Parameter(torch.zeros(n_layers))
        inputs = size * len(self.concat) if self.concat else size
        self.head = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        if basic_head:  # the head for the basic four (BASIC order), with its own population statistics
            if speaker_norm:
                self.register_buffer("basic_norm_mean", torch.zeros(n_layers, size))
                self.register_buffer("basic_norm_std", torch.ones(n_layers, size))
            self.basic_layer_weights = nn.Parameter(torch.zeros(n_layers))
            self.basic_head = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(dropout),
                                            nn.Linear(hidden, len(BASIC)))
        if speaker_norm and adapt_weighting == "emotion-removed":  # per label the cold reading head reads
            reading = len(BASIC) if basic_head else n_classes  # (the head for the four where there is one)
            self.register_buffer("emotion_offsets", torch.zeros(reading, n_layers, size))
        if int8_bytes:  # the same encoder quantised, as an onnxruntime graph (serapp/models/int8.py)
            self.register_buffer("encoder_int8", torch.zeros(int8_bytes, dtype=torch.uint8))
        self.use_int8 = True  # False: always float32 through torch (the reference; benchmarks compare)
        self._int8: Int8Encoder | None = None
        self._int8_frames: int | None = None  # set once the graph is checked (accept_int8): no graph runs before
        self.register_load_state_dict_post_hook(_forget_int8_session)

    def _whisper(self, n_features, encoder_dir, encoder_sha256, dims: WhisperDims, on_meta) -> tuple[int, int]:
        if n_features != 80:
            raise ValueError('the Whisper encoder reads its own log-mel: set features.kind = "whisper" (80 bands)')
        if encoder_dir and not on_meta:  # training starts from the published weights; a bundle carries its own
            path = Path(encoder_dir).expanduser() / "encoder.safetensors"
            if not path.is_file():
                raise EncoderUnavailable(f"{path}: no Whisper encoder here (model.encoder_dir must name a folder "
                                         "holding openai-whisper-named encoder.safetensors; nothing is downloaded)")
            self.encoder = load_whisper_weights(path, dims.n_blocks, post_ln=False)
            d = self.encoder.dims  # the file's: recorded, so a bundle builds the same network
            self.hparams.update(encoder_dir="", encoder_sha256=encoder_sha256 or encoder_checksum_file(path),
                                width=d.width, heads=d.heads)
        else:
            self.encoder = WhisperEncoder(dims)
        if self.frozen_encoder:
            self.encoder.requires_grad_(False)
        self.encoder._register_state_dict_hook(_half_on_disk)
        return self.encoder.dims.width, self.encoder.dims.n_blocks + 1

    def _hf(self, n_features, encoder_dir, encoder_sha256, on_meta) -> tuple[int, int]:
        if n_features != 1:
            raise ValueError('speech encoders read the waveform: set features.kind = "waveform"')
        encoder = load_encoder(encoder_dir, encoder_sha256, weights=not on_meta)
        if not encoder_sha256 and not on_meta:  # recorded at training time, checked wherever it is loaded
            self.hparams["encoder_sha256"] = encoder_checksum(encoder_dir)
        if self.frozen_encoder:  # kept out of the module tree: not in the bundle, not trained, always in eval mode
            encoder.requires_grad_(False).eval()
            self._frozen = [encoder]
        else:
            self.encoder = encoder
        return encoder.config.hidden_size, encoder.config.num_hidden_layers + 1

    @property
    def licence(self) -> str:
        return WHISPER_LICENCE if self.backbone == "whisper" else ""

    @property
    def speech_encoder(self) -> nn.Module:
        return self._frozen[0] if self.backbone == "hf" and self.frozen_encoder else self.encoder

    def _apply(self, fn, *args, **kwargs):
        if self.backbone == "hf" and self.frozen_encoder:  # .to(device) and friends reach the frozen encoder too
            self._frozen[0]._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_encoder and self.backbone == "whisper":
            self.encoder.eval()  # frozen: no dropout, ever
        return self

    def _layer_outputs(self, features: torch.Tensor) -> list[torch.Tensor]:
        if self.backbone == "whisper":
            if self.encoder.conv1.weight.dtype != features.dtype:  # kept in float16 while int8 ran
                self.encoder.to(features.dtype)
            return self.encoder.layer_outputs(features)
        return list(self.speech_encoder(features[:, 0, :], output_hidden_states=True).hidden_states)

    def attach_int8(self, graph: bytes, frames: int) -> None:
        """Carry `graph` (trainer/quantise.py, for windows of `frames`) in the bundle and run it on
        CPUs from now on."""
        if self.backbone != "whisper" or not self.frozen_encoder:
            raise ValueError("an int8 encoder graph goes only with a frozen Whisper encoder")
        self.register_buffer("encoder_int8", torch.frombuffer(bytearray(graph), dtype=torch.uint8))
        self.hparams["int8_bytes"] = len(graph)
        self._int8 = None
        self.accept_int8(frames)

    def accept_int8(self, frames: int) -> None:
        """Hold the int8 graph to the exporter's for windows of `frames` (int8_check.GraphRefused
        says why not; ImportError without onnx) and let it run from now on."""
        check_graph(self.encoder_int8.cpu().numpy().tobytes(), **limits(self.hparams, frames))
        self._int8, self._int8_frames = None, frames

    @property
    def runtime(self) -> str:
        """How the encoder runs on a CPU: "onnxruntime int8" or "torch float32"."""
        return "onnxruntime int8" if self._int8_encoder() is not None else "torch float32"

    def _int8_encoder(self) -> Int8Encoder | None:
        if (not self.use_int8 or "encoder_int8" not in self._buffers or self._int8_frames is None
                or not Int8Encoder.available()):
            return None
        if self._int8 is None:
            self._int8 = Int8Encoder(self.encoder_int8, self._int8_frames)
        return self._int8

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, layers, width or 2 x width): each layer's output pooled over time (the mean, and
        with "mean+std" its standard deviation). What the trainer caches and a voice's statistics
        are taken over. On a CPU, a model with an int8 graph runs it (serapp/models/int8.py)."""
        int8 = self._int8_encoder()
        if int8 is not None and int8.reads(features):
            if self.encoder.conv1.weight.dtype == torch.float32:
                # the float weights wait in float16 (27 MB less resident) until a float read needs them
                self.encoder.half()
            return int8.pooled(features)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_encoder):
            states = self._layer_outputs(features)
            if self.pooling == "mean":
                return torch.stack([s.mean(dim=1) for s in states], dim=1)
            return torch.stack([torch.cat([s.mean(dim=1), s.std(dim=1, unbiased=False)], dim=-1) for s in states], dim=1)

    def classify(self, pooled: torch.Tensor, mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                 basic: bool = False) -> torch.Tensor:
        """Logits from pooled features, normalised by a voice's statistics (`mean`, `std`:
        (layers, size) or one row per item) or, by default, the population's. `basic`: the
        head for the basic four (BASIC order; by default its own population's statistics)."""
        if basic and not self.has_basic_head:
            raise ValueError("this model has no head for the basic four")
        head, layer_weights = (self.basic_head, self.basic_layer_weights) if basic else (self.head, self.layer_weights)
        if self.speaker_norm:
            if mean is None:
                mean = self.basic_norm_mean if basic else self.norm_mean
            if std is None:
                std = self.basic_norm_std if basic else self.norm_std
            pooled = (pooled - mean) / std
        if self.concat:
            return head(pooled[:, self.concat].flatten(1))
        weighted = torch.einsum("l,bld->bd", torch.softmax(layer_weights, dim=0), pooled)
        return head(weighted)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.pooled(features))


def check_basic_head(basic_head, finetune) -> None:
    """`basic_head`'s type, and the one encoder it goes with (the trainer trains it on a frozen
    encoder's cached outputs)."""
    if not isinstance(basic_head, bool):
        raise ValueError(f"basic_head must be true or false, not {basic_head!r}")
    if basic_head and finetune:
        raise ValueError("basic_head (a head for the basic four) goes only with a frozen encoder (finetune = false)")


def parse_blocks(text: str, n_layers: int) -> list[int]:
    """"2,3,4" -> [2, 3, 4]: different pooled layers, each in [0, n_layers); "" -> []."""
    if not isinstance(text, str):
        raise ValueError(f"concat_blocks must be a string such as \"2,3,4\", not {text!r}")
    if not text.strip():
        return []
    try:
        blocks = [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"concat_blocks must be block numbers separated by commas, not {text!r}") from None
    if len(set(blocks)) != len(blocks) or not all(0 <= b < n_layers for b in blocks):
        raise ValueError(f"concat_blocks must name different blocks in [0, {n_layers - 1}], not {text!r}")
    return blocks


def encoder_checksum_file(path: Path) -> str:
    """SHA-256 of one weights file (the Whisper encoder's provenance, recorded in the bundle)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
