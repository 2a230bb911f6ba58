"""Images with captions, offline: emoji and their Unicode names, and glyphs every machine has.

Two data sets of :class:`Captioned` images, both made on the machine, nothing downloaded:

* :func:`emoji`: every emoji of the colour font Noto Color Emoji (the Debian package
  ``fonts-noto-color-emoji``), rendered with Pillow at the bitmap font's native size
  (109) and resized to 64×64 over white; the caption is the character's Unicode name in
  lower case, ``unicodedata.name(ch).lower()`` ("spiral shell", "smiling face with
  horns"). Skin-tone modifiers, regional-indicator letters, ASCII (the keycap bases
  ``0-9 # *``), joiners, variation selectors and tags are left out, and so are the
  characters Python's Unicode database does not name yet. With Python 3.11 (Unicode
  14.0) and the font of Debian 12 (2.042) that leaves 1,361 images. Each image also has
  a class, its Unicode block (23 of them), for a classifier. Rendering
  takes a few seconds; the result is cached under the user cache folder (written
  atomically), keyed by the font file's hash, the Unicode version and the size.
* :func:`glyphs`: the letters and digits of Pillow's built-in default font, in a few
  colours, sizes and positions, captioned the same way ("latin capital letter a",
  "digit seven"); the class of an image is its character. Every machine with Pillow has
  it: the data of the tests, and of the example when the emoji font is missing.

:func:`split` cuts a data set into training and test images by a hash of each
caption's key, so the split of one emoji never depends on which other emoji the font
has. :class:`Vocabulary` turns captions into padded rows of token ids.

>>> data = glyphs(chars="AB7", variants=2, size=32)
>>> len(data), data.images.shape, data.images.dtype
(6, torch.Size([6, 3, 32, 32]), torch.uint8)
>>> data.captions[:3], data.class_names
(['latin capital letter a', 'latin capital letter a', 'latin capital letter b'], ('A', 'B', '7'))
>>> vocab = Vocabulary.build(data.captions)
>>> vocab.words[:6], len(vocab)
(('<pad>', '<start>', '<end>', '<unk>', 'capital', 'latin'), 11)
>>> rows = vocab.encode(["digit seven", "latin capital letter q"], length=7)
>>> rows.tolist()
[[1, 9, 10, 2, 0, 0, 0], [1, 5, 4, 6, 3, 2, 0]]
>>> vocab.decode(rows[1])
'latin capital letter <unk>'
"""

from __future__ import annotations

import hashlib
import io
import os
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import learning_diagrams as ld

__all__ = [
    "Captioned",
    "Vocabulary",
    "emoji",
    "emoji_characters",
    "glyphs",
    "split",
    "unicode_block",
    "cache_dir",
    "EMOJI_FONT",
    "EmojiFontMissingError",
    "PAD",
    "START",
    "END",
    "UNK",
]

#: Where the Debian package ``fonts-noto-color-emoji`` puts the font.
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"

#: Noto Color Emoji is a bitmap font: its glyphs exist at this size only.
NATIVE_SIZE = 109

#: Token ids fixed for every vocabulary: padding is 0, so a loss can ignore it by id.
PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")

#: Unicode blocks that hold emoji (Unicode 14.0), by first and last code point.
BLOCKS = (
    (0x0080, 0x00FF, "Latin-1 Supplement"),
    (0x2000, 0x206F, "General Punctuation"),
    (0x2100, 0x214F, "Letterlike Symbols"),
    (0x2190, 0x21FF, "Arrows"),
    (0x2300, 0x23FF, "Miscellaneous Technical"),
    (0x2460, 0x24FF, "Enclosed Alphanumerics"),
    (0x25A0, 0x25FF, "Geometric Shapes"),
    (0x2600, 0x26FF, "Miscellaneous Symbols"),
    (0x2700, 0x27BF, "Dingbats"),
    (0x2900, 0x297F, "Supplemental Arrows-B"),
    (0x2B00, 0x2BFF, "Miscellaneous Symbols and Arrows"),
    (0x3000, 0x303F, "CJK Symbols and Punctuation"),
    (0x3200, 0x32FF, "Enclosed CJK Letters and Months"),
    (0x1F000, 0x1F02F, "Mahjong Tiles"),
    (0x1F0A0, 0x1F0FF, "Playing Cards"),
    (0x1F100, 0x1F1FF, "Enclosed Alphanumeric Supplement"),
    (0x1F200, 0x1F2FF, "Enclosed Ideographic Supplement"),
    (0x1F300, 0x1F5FF, "Miscellaneous Symbols and Pictographs"),
    (0x1F600, 0x1F64F, "Emoticons"),
    (0x1F680, 0x1F6FF, "Transport and Map Symbols"),
    (0x1F780, 0x1F7FF, "Geometric Shapes Extended"),
    (0x1F900, 0x1F9FF, "Supplemental Symbols and Pictographs"),
    (0x1FA70, 0x1FAFF, "Symbols and Pictographs Extended-A"),
)


class EmojiFontMissingError(FileNotFoundError):
    """The emoji font is not installed; the message says which Debian package installs it."""


# -- the data set -------------------------------------------------------------------


@dataclass
class Captioned:
    """Captioned images: ``images`` uint8 ``(n, 3, H, W)``, one caption, key and class each.

    ``keys`` name the images (the character drawn, with a variant number for glyphs) and
    decide the train/test split; ``labels`` index ``class_names`` (an emoji's Unicode
    block, a glyph's character) for pretraining an encoder by classification.
    """

    images: torch.Tensor
    captions: list[str]
    keys: list[str]
    labels: torch.Tensor
    class_names: tuple[str, ...]
    name: str = "captioned images"

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, index: Sequence[int]) -> Captioned:
        """The images at ``index``, in that order (the class names stay the same)."""
        index = list(index)
        return Captioned(
            self.images[index],
            [self.captions[i] for i in index],
            [self.keys[i] for i in index],
            self.labels[index],
            self.class_names,
            self.name,
        )


def split(data: Captioned, test_fraction: float = 0.2, salt: str = "split-v1") -> tuple[Captioned, Captioned]:
    """``(train, test)``: an image is a test image when a hash of its key (and ``salt``) says so.

    The hash (BLAKE2b of ``salt + key``) is the same on every machine and every run, and
    an image's side does not depend on the other images, so a font with more emoji
    keeps the split of those it shares with an older one. For glyphs the key includes
    the variant, so each character has renderings on both sides.

    >>> train, test = split(glyphs(chars="0123456789", variants=5, size=16))
    >>> len(train), len(test), set(train.keys) & set(test.keys)
    (42, 8, set())
    """
    if not 0.0 < test_fraction < 1.0:
        raise ld.errors.OptionError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    cut = int(test_fraction * 2**32)
    in_test = [
        int.from_bytes(hashlib.blake2b(f"{salt}:{k}".encode(), digest_size=4).digest(), "big") < cut for k in data.keys
    ]
    train = [i for i, t in enumerate(in_test) if not t]
    test = [i for i, t in enumerate(in_test) if t]
    return data.subset(train), data.subset(test)


# -- vocabulary ------------------------------------------------------------------


def words(caption: str) -> list[str]:
    """The tokens of a caption: its words, split at spaces (Unicode names have no punctuation but hyphens)."""
    return caption.split()


@dataclass(frozen=True)
class Vocabulary:
    """Word-level tokens: ``<pad>`` (0), ``<start>`` (1), ``<end>`` (2), ``<unk>`` (3), then words.

    Words are ordered by frequency in the captions the vocabulary is built from, then
    alphabetically; a word not among them becomes ``<unk>``.
    """

    words: tuple[str, ...]

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> Vocabulary:
        counts = Counter(w for c in captions for w in words(c))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls(SPECIALS + tuple(kept))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, captions: Sequence[str], length: int | None = None) -> torch.Tensor:
        """``(n, length)`` int64 rows ``<start> w1 … wk <end> <pad> …``; ``length`` defaults to the longest.

        A caption too long for ``length`` is cut, keeping ``<end>`` last.
        """
        index = self.index
        rows = [[START, *(index.get(w, UNK) for w in words(c)), END] for c in captions]
        length = max((len(r) for r in rows), default=2) if length is None else length
        if length < 2:
            raise ld.errors.OptionError(f"length must leave room for <start> and <end>, got {length}")
        out = torch.full((len(rows), length), PAD, dtype=torch.int64)
        for i, r in enumerate(rows):
            r = r if len(r) <= length else [*r[: length - 1], END]
            out[i, : len(r)] = torch.tensor(r)
        return out

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """The words of one row of ids, after ``<start>`` and before the first ``<end>`` (padding skipped)."""
        out = []
        for i in (int(i) for i in ids):
            if i == END:
                break
            if i not in (PAD, START):
                out.append(self.words[i])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.tokens(ids))


# -- emoji ------------------------------------------------------------------------


def unicode_block(ch: str) -> str:
    """The Unicode block of an emoji character, among those in :data:`BLOCKS`.

    >>> unicode_block("\\N{SPIRAL SHELL}"), unicode_block("\\N{SMILING FACE WITH HORNS}")
    ('Miscellaneous Symbols and Pictographs', 'Emoticons')
    """
    c = ord(ch)
    for first, last, name in BLOCKS:
        if first <= c <= last:
            return name
    return "Other"


def _font_missing(path: Path) -> EmojiFontMissingError:
    return EmojiFontMissingError(
        f"the emoji font is not at {path}; nothing is downloaded.\n"
        f"Install the Debian package that puts it there (needs root; `make captioning` runs it when you are root):\n"
        f"    apt-get install fonts-noto-color-emoji\n"
        f"or pass font= (--emoji-font) pointing at your own copy of NotoColorEmoji.ttf"
    )


def emoji_characters(font: str | os.PathLike = EMOJI_FONT) -> list[tuple[str, str]]:
    """``(character, caption)`` for every emoji the font draws that has a Unicode name, by code point.

    Left out: ASCII (the keycap bases ``0-9 # *``), regional-indicator letters
    (U+1F1E6–1F1FF, which draw flags in pairs), skin-tone modifiers (U+1F3FB–1F3FF),
    format and combining characters (joiners, variation selectors, tags, the keycap
    frame), private-use code points and those Python's Unicode database does not name.
    """
    from fontTools.ttLib import TTFont

    path = Path(font)
    if not path.is_file():
        raise _font_missing(path)
    with TTFont(path, lazy=True) as face:
        cmap = face.getBestCmap()
    out = []
    for c in sorted(cmap):
        ch = chr(c)
        name = unicodedata.name(ch, None)
        if (
            name is None
            or c < 0x80
            or 0x1F1E6 <= c <= 0x1F1FF
            or 0x1F3FB <= c <= 0x1F3FF
            or unicodedata.category(ch)[0] in "CMZ"
        ):
            continue
        out.append((ch, name.lower()))
    return out


def _render_emoji(chars: Sequence[str], font: Path, size: int) -> np.ndarray:
    """``(n, size, size, 3)`` uint8: each character drawn in colour over white, its advance box centred."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(font), NATIVE_SIZE)
    out = np.empty((len(chars), size, size, 3), dtype=np.uint8)
    for i, ch in enumerate(chars):
        left, top, right, bottom = map(int, face.getbbox(ch))  # whole pixels (Pillow types them float)
        side = max(right - left, bottom - top)
        canvas = Image.new("RGBA", (side, side), (255, 255, 255, 0))
        ImageDraw.Draw(canvas).text(
            ((side - (right - left)) // 2 - left, (side - (bottom - top)) // 2 - top),
            ch,
            font=face,
            embedded_color=True,
        )
        white = Image.new("RGBA", canvas.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, canvas).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        out[i] = np.asarray(image)
    return out


def cache_dir() -> Path:
    """The user cache folder of learning-diagrams: ``$LEARNING_DIAGRAMS_CACHE``, else ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get("LEARNING_DIAGRAMS_CACHE"):
        return Path(os.environ["LEARNING_DIAGRAMS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "learning-diagrams"


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def emoji(
    size: int = 64, *, font: str | os.PathLike = EMOJI_FONT, cache: str | os.PathLike | bool | None = None
) -> Captioned:
    """Every emoji of the colour font with its Unicode name as caption (see the module documentation).

    Parameters
    ----------
    size : int
        Side of the square images, in pixels (drawn at 109 px, resized with Lanczos).
    font : path
        The font file; default :data:`EMOJI_FONT`, where ``fonts-noto-color-emoji`` puts it.
    cache : path, bool or None
        Folder of the cache (default :func:`cache_dir`); ``False`` renders without caching.

    Raises
    ------
    EmojiFontMissingError
        When the font is not there; the message names the Debian package.
    """
    from learning_diagrams.io import write_atomic

    path = Path(font)
    if not path.is_file():
        raise _font_missing(path)
    cached = None
    if cache is not False:
        folder = cache_dir() if cache is None or cache is True else Path(cache)
        cached = folder / f"emoji-{_file_hash(path)}-unicode{unicodedata.unidata_version}-{size}px.npz"
        if cached.is_file():
            with np.load(cached, allow_pickle=False) as z:
                return _emoji_from_arrays(z["images"], [str(c) for c in z["chars"]])
    pairs = emoji_characters(path)
    chars = [ch for ch, _ in pairs]
    images = _render_emoji(chars, path, size)
    if cached is not None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=images, chars=np.array(chars))
        cached.parent.mkdir(parents=True, exist_ok=True)  # the cache folder is ours to create
        write_atomic(cached, buffer.getvalue())
    return _emoji_from_arrays(images, chars)


def _emoji_from_arrays(images: np.ndarray, chars: list[str]) -> Captioned:
    blocks = [unicode_block(ch) for ch in chars]
    names = tuple(dict.fromkeys(name for _, _, name in BLOCKS if name in blocks))
    index = {b: i for i, b in enumerate(names)}
    return Captioned(
        images=torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
        captions=[unicodedata.name(ch).lower() for ch in chars],
        keys=[f"U+{ord(ch):04X}" for ch in chars],
        labels=torch.tensor([index[b] for b in blocks], dtype=torch.int64),
        class_names=names,
        name="emoji",
    )


# -- glyphs: the data every machine has ------------------------------------------------

#: Colours the glyphs are drawn in (dark, so they stand out on the light backgrounds).
_INKS = ((20, 20, 20), (180, 30, 30), (30, 110, 40), (30, 60, 170), (120, 40, 140), (160, 90, 10))


def glyphs(
    chars: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    variants: int = 5,
    size: int = 64,
    seed: int = 0,
) -> Captioned:
    """Each character of ``chars`` drawn ``variants`` times with Pillow's built-in font; captions are Unicode names.

    Each variant has its own ink colour, light background, glyph size (45–70% of the
    image) and offset, drawn from ``seed``. Pillow's default font is embedded in
    Pillow itself (a scalable FreeType font when Pillow has FreeType, as its wheels
    do; otherwise the small bitmap font, scaled up), so every machine has this data.
    """
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    images = np.empty((len(chars) * variants, size, size, 3), dtype=np.uint8)
    captions, keys, labels = [], [], []
    for c, ch in enumerate(chars):
        for v in range(variants):
            glyph_px = int(size * rng.uniform(0.45, 0.7))
            ink = _INKS[rng.integers(len(_INKS))]
            paper = tuple(int(x) for x in rng.integers(215, 256, size=3))
            try:
                face = ImageFont.load_default(size=glyph_px)
            except (TypeError, ImportError, OSError):  # Pillow without FreeType: the bitmap font
                face = ImageFont.load_default()
            image = Image.new("RGB", (size, size), paper)
            draw = ImageDraw.Draw(image)
            left, top, right, bottom = map(int, draw.textbbox((0, 0), ch, font=face))  # whole pixels
            room_x, room_y = size - (right - left), size - (bottom - top)
            x = int(rng.integers(max(room_x // 4, 0), max(3 * room_x // 4, 1)))
            y = int(rng.integers(max(room_y // 4, 0), max(3 * room_y // 4, 1)))
            draw.text((x - left, y - top), ch, font=face, fill=ink)
            images[c * variants + v] = np.asarray(image)
            captions.append(unicodedata.name(ch).lower())
            keys.append(f"U+{ord(ch):04X}/{v}")
            labels.append(c)
    return Captioned(
        images=torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
        captions=captions,
        keys=keys,
        labels=torch.tensor(labels, dtype=torch.int64),
        class_names=tuple(chars),
        name="glyphs",
    )
