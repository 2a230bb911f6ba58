"""Font glyphs: an Omniglot-style few-shot data set rendered offline from real fonts.

Each *class* is a character (Latin, digits, Greek, Cyrillic); each *image* is
that character typeset in one font file, 28×28, white on black, values in
``[0, 1]``. Characters that look alike by design (Latin ``A``, Greek ``Α``,
Cyrillic ``А``) are one class (:data:`LOOKALIKES`). Nothing is downloaded: the
fonts come from four Debian packages (:data:`FONT_PACKAGES`)::

    apt-get install fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-urw-base35

and the list of font files is pinned (:data:`FONT_FILES`), since the data depend
on which fonts are installed. What it holds, with the pinned fonts: 177
characters, 143 classes after merging look-alikes, 63 font files, 9,009 images
(every font covers every character, so each class has 63).

How it is made (:func:`render`):

* **Coverage.** A font renders a character only if its Unicode character map
  covers it, read with fontTools (``TTFont(path).getBestCmap()``), and the
  rendered glyph has ink. The two symbol fonts of ``fonts-urw-base35``
  (Standard Symbols PS, and D050000L, the Dingbats) are left out: they map
  Latin letters to Greek or pictorial glyphs.
* **Typesetting.** One size for every glyph: 80 pixels per em on a 112×112
  canvas, baseline at row 88, ink centred horizontally; then the canvas is
  reduced 4× to 28×28 by area averaging (anti-aliased). So the em is 20 pixels,
  capitals are about 14 high, lower case is smaller than upper case (``c`` and
  ``C``, Cyrillic ``к`` and ``К`` stay apart), descenders go below the baseline.
  A glyph whose ink would leave the canvas (very rare) is shrunk to fit.
* **Look-alikes.** A class is a group of code points (:data:`LOOKALIKES`, else
  the character alone). A font contributes one image per class: the rendering
  of the group's first code point it covers. Images identical to the byte
  within a class (two fonts sharing outlines) are kept once.
* **Split.** :func:`split_classes` orders the classes by a salted hash of their
  name and cuts meta-train / meta-val / meta-test classes 64% / 16% / 20%
  (the proportions of mini-ImageNet's 64/16/20), the same on every machine.

The rendered array is cached in ``$LEARNING_DIAGRAMS_CACHE`` or
``$XDG_CACHE_HOME/learning-diagrams`` (default ``~/.cache/learning-diagrams``)
as ``glyphs-<hash>.npz``, the hash taken over the fonts' contents, the
characters and the rendering settings, written atomically; a repeat run loads
it in a fraction of a second. ``python -m learning_diagrams.examples.glyphs [--grid PATH]``
renders (or loads) it, prints the classes of each split, and saves a grid of samples.

>>> len(CHARACTERS), len(character_classes())
(177, 143)
>>> [c for c in character_classes() if "A" in c]
['AΑА']
>>> splits = split_classes(character_classes())
>>> {name: len(c) for name, c in splits.items()}
{'train': 92, 'val': 23, 'test': 28}
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

import learning_diagrams as ld
from learning_diagrams.io import write_atomic
from learning_diagrams.examples.datasets import DataMissingError

__all__ = [
    "GlyphSet",
    "FontsMissingError",
    "glyphs",
    "render",
    "character_classes",
    "split_classes",
    "font_files",
    "font_package_versions",
    "cache_dir",
    "grid",
    "describe",
    "main",
    "CHARACTERS",
    "LOOKALIKES",
    "FONT_PACKAGES",
    "PINNED_VERSIONS",
    "FONT_FILES",
    "APT_COMMAND",
]

# -- the characters ----------------------------------------------------------------

_LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_GREEK = (
    "".join(chr(c) for c in range(0x391, 0x3AA) if c != 0x3A2)  # Α..Ω (no reserved U+03A2)
    + "".join(chr(c) for c in range(0x3B1, 0x3CA))
)  # α..ω, final ς included
_CYRILLIC = (
    "".join(chr(c) for c in range(0x410, 0x430))
    + "Ё"  # А..Я, Ё
    + "".join(chr(c) for c in range(0x430, 0x450))
    + "ё"
)  # а..я, ё

#: Every character rendered, in class order: Latin, digits, Greek, Cyrillic (177).
CHARACTERS = _LATIN + _DIGITS + _GREEK + _CYRILLIC

#: Groups of characters drawn alike by design, each one class, named by the whole group. A pair is
#: grouped when its two renderings are the same image in most of the 63 fonts (median, over the
#: fonts, of the squared pixel distance under 0.5; every grouped pair has median 0.00 or 0.04): Latin,
#: Greek and Cyrillic capitals of one shape, Greek Γ Π and Cyrillic Г П, and the lower-case Latin,
#: Cyrillic and Greek letters of one shape. Pairs that are only similar stay apart: Greek κ and
#: Cyrillic к (median 2.6), Latin n and Cyrillic п (2.8; alike in italics only), Latin K and
#: Cyrillic К, Greek Φ and Cyrillic Ф (drawn differently in many fonts), Greek ν and Latin v.
LOOKALIKES = (
    "AΑА",
    "BΒВ",
    "CС",
    "EΕЕ",
    "HΗН",
    "IΙ",
    "KΚ",
    "MΜМ",
    "NΝ",
    "OΟО",
    "PΡР",
    "TΤТ",
    "XΧХ",
    "YΥ",
    "ZΖ",
    "ΓГ",
    "ΠП",
    "aа",
    "cс",
    "eе",
    "oοо",
    "pр",
    "xх",
    "yу",
)


def character_classes() -> list[str]:
    """The classes, each named by its group of characters, in the order of :data:`CHARACTERS`.

    >>> character_classes()[:3], character_classes()[-1]
    (['AΑА', 'BΒВ', 'CС'], 'ё')
    """
    group_of = {c: group for group in LOOKALIKES for c in group}
    return list(dict.fromkeys(group_of.get(c, c) for c in CHARACTERS))


def describe(name: str) -> str:
    """A class's characters with their Unicode names: ``'A' (LATIN CAPITAL LETTER A), ...``."""
    return ", ".join(f"{c!r} ({unicodedata.name(c)})" for c in name)


# -- the split -----------------------------------------------------------------------


def split_classes(
    names: Sequence[str], fractions: Sequence[float] = (0.64, 0.16, 0.20), salt: str = "learning-diagrams/fewshot"
) -> dict[str, list[int]]:
    """Meta-train / meta-val / meta-test class indices, the same on every machine.

    The classes are ordered by ``sha256(salt + name)`` (no random generator, so no
    library version can change it) and cut in ``fractions`` (rounded; the test share
    takes the rest). Each list is sorted.

    >>> split_classes([str(d) for d in range(10)], (0.5, 0.0, 0.5))
    {'train': [0, 4, 6, 8, 9], 'val': [], 'test': [1, 2, 3, 5, 7]}
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ld.errors.OptionError(
            f"fractions {tuple(fractions)} are not three shares (train, val, test) adding up to 1"
        )
    if len(set(names)) != len(names):
        raise ld.errors.DuplicateNameError("class names must be distinct")
    order = sorted(range(len(names)), key=lambda i: hashlib.sha256(f"{salt}/{names[i]}".encode()).hexdigest())
    n_train = round(fractions[0] * len(names))
    n_val = round(fractions[1] * len(names))
    cuts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    return {name: sorted(part) for name, part in cuts.items()}


# -- the fonts -----------------------------------------------------------------------

#: The Debian packages the fonts come from.
FONT_PACKAGES = ("fonts-dejavu-core", "fonts-liberation2", "fonts-freefont-ttf", "fonts-urw-base35")

#: The versions the documented numbers were made with (Debian 12 "bookworm").
PINNED_VERSIONS = {
    "fonts-dejavu-core": "2.37-6",
    "fonts-liberation2": "2.1.5-1",
    "fonts-freefont-ttf": "20120503-10",
    "fonts-urw-base35": "20200910-7",
}

#: The command that installs them.
APT_COMMAND = "apt-get install " + " ".join(FONT_PACKAGES)

_URW = [
    f"{family}-{style}.otf"
    for family, styles in (
        ("C059", ("Roman", "Italic", "Bold", "BdIta")),
        ("NimbusMonoPS", ("Regular", "Italic", "Bold", "BoldItalic")),
        ("NimbusRoman", ("Regular", "Italic", "Bold", "BoldItalic")),
        ("NimbusSans", ("Regular", "Italic", "Bold", "BoldItalic")),
        ("NimbusSansNarrow", ("Regular", "Oblique", "Bold", "BoldOblique")),
        ("P052", ("Roman", "Italic", "Bold", "BoldItalic")),
        ("URWBookman", ("Light", "LightItalic", "Demi", "DemiItalic")),
        ("URWGothic", ("Book", "BookOblique", "Demi", "DemiOblique")),
    )
    for style in styles
] + ["Z003-MediumItalic.otf"]

#: The pinned font files, by package: (folder, file names). 63 files.
FONT_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fonts-dejavu-core": (
        "/usr/share/fonts/truetype/dejavu",
        tuple(f"DejaVu{family}{style}.ttf" for family in ("Sans", "SansMono", "Serif") for style in ("", "-Bold")),
    ),
    "fonts-liberation2": (
        "/usr/share/fonts/truetype/liberation2",
        tuple(
            f"Liberation{family}-{style}.ttf"
            for family in ("Sans", "Serif", "Mono")
            for style in ("Regular", "Italic", "Bold", "BoldItalic")
        ),
    ),
    "fonts-freefont-ttf": (
        "/usr/share/fonts/truetype/freefont",
        tuple(
            f"Free{family}{style}.ttf"
            for family, styles in (
                ("Sans", ("", "Oblique", "Bold", "BoldOblique")),
                ("Serif", ("", "Italic", "Bold", "BoldItalic")),
                ("Mono", ("", "Oblique", "Bold", "BoldOblique")),
            )
            for style in styles
        ),
    ),
    "fonts-urw-base35": ("/usr/share/fonts/opentype/urw-base35", tuple(_URW)),
}


class FontsMissingError(DataMissingError):
    """Font files of the glyph data set are missing; the message says what to install."""


def font_files(fonts: Mapping[str, tuple[str, Sequence[str]]] | None = None) -> list[Path]:
    """The font files, checked to exist; raises :class:`FontsMissingError` listing the packages.

    ``fonts`` has the form of :data:`FONT_FILES` (package or any label: folder, file names);
    default the pinned Debian fonts.
    """
    table = FONT_FILES if fonts is None else fonts
    paths: list[Path] = []
    missing: dict[str, list[str]] = {}
    for package, (folder, names) in table.items():
        for name in names:
            path = Path(folder) / name
            if path.is_file():
                paths.append(path)
            else:
                missing.setdefault(package, []).append(str(path))
    if missing:
        lines = [f"  {package}: {len(files)} file(s) missing, e.g. {files[0]}" for package, files in missing.items()]
        raise FontsMissingError(
            "The font-glyph data set needs fonts that are not installed:\n" + "\n".join(lines) + "\n"
            f"Install them (Debian, needs root; `make glyphs` runs it when you are root):\n    {APT_COMMAND}\n"
            "Nothing is downloaded at run time. The data depend on the fonts: the pinned versions are "
            "listed in docs/examples/fewshot.md."
        )
    return paths


def font_package_versions() -> dict[str, str]:
    """The installed version of each font package, by ``dpkg-query`` ("?" where unknown)."""
    versions = dict.fromkeys(FONT_PACKAGES, "?")
    if shutil.which("dpkg-query"):
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *FONT_PACKAGES],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in result.stdout.splitlines():
            package, _, version = line.partition(" ")
            if package in versions and version:
                versions[package] = version
    return versions


# -- rendering -----------------------------------------------------------------------

#: Rendering settings (part of the cache key).
SCALE, SIZE, EM, BASELINE = 4, 28, 20, 22
_RENDER_VERSION = 1


@dataclass
class GlyphSet:
    """The rendered glyphs.

    Attributes
    ----------
    images : numpy.ndarray
        ``uint8``, ``(n, 28, 28)``, ink 255 on background 0.
    labels : numpy.ndarray
        ``int64`` class index of each image, into ``classes``.
    fonts : numpy.ndarray
        ``int64`` index of each image's font file, into ``font_names``.
    classes : list of str
        Each class named by its characters (``"AΑА"``).
    font_names : list of str
        The font files' names.
    """

    images: np.ndarray
    labels: np.ndarray
    fonts: np.ndarray
    classes: list[str]
    font_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> np.ndarray:
        """Images per class."""
        return np.bincount(self.labels, minlength=len(self.classes))

    def tensors(self):
        """``(images, labels)`` as torch tensors: ``float32 (n, 1, 28, 28)`` in ``[0, 1]``, ``int64 (n,)``."""
        import torch

        return (
            torch.from_numpy(self.images.astype(np.float32) / 255.0).unsqueeze(1),
            torch.from_numpy(self.labels.astype(np.int64)),
        )


def _covered(path: Path) -> set[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return set(font.getBestCmap() or {})


def _render_one(font, char: str, size: int) -> np.ndarray | None:
    """One character in one font (a FreeType font object of ``EM * SCALE`` pixels per em), or None: no ink."""
    from PIL import Image, ImageDraw

    side = SIZE * SCALE
    left, top, right, bottom = font.getbbox(char, anchor="ls")
    if right <= left or bottom <= top:
        return None
    baseline = BASELINE * SCALE
    width = right - left
    if -top > baseline or bottom > side - baseline or width > side:  # never with the pinned fonts: shrink to fit
        factor = min(baseline / max(-top, 1), (side - baseline) / max(bottom, 1), side / width)
        return _render_one(font.font_variant(size=int(font.size * factor)), char, size)
    image = Image.new("L", (side, side), 0)
    ImageDraw.Draw(image).text(((side - width) / 2 - left, baseline), char, fill=255, font=font, anchor="ls")
    small = image.resize((size, size), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.uint8)
    return pixels if pixels.max() > 0 else None


def render(paths: Sequence[Path], classes: Sequence[str] | None = None) -> GlyphSet:
    """Render every class in every font that covers it (see the module's notes); no caching."""
    from PIL import ImageFont

    classes = list(character_classes() if classes is None else classes)
    images, labels, fonts = [], [], []
    for f, path in enumerate(paths):
        covered = _covered(path)
        font = ImageFont.truetype(str(path), size=EM * SCALE)
        for k, group in enumerate(classes):
            for char in group:
                if ord(char) not in covered:
                    continue
                pixels = _render_one(font, char, SIZE)
                if pixels is not None:
                    images.append(pixels)
                    labels.append(k)
                    fonts.append(f)
                    break  # one image per font and class
    images_a = np.stack(images) if images else np.zeros((0, SIZE, SIZE), np.uint8)
    labels_a, fonts_a = np.asarray(labels, np.int64), np.asarray(fonts, np.int64)
    keep, seen = [], set()
    for i in range(len(labels_a)):  # drop byte-identical images within a class
        key = (int(labels_a[i]), hashlib.sha1(images_a[i].tobytes()).digest())
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return GlyphSet(images_a[keep], labels_a[keep], fonts_a[keep], classes, [p.name for p in paths])


def cache_dir() -> Path:
    """``$LEARNING_DIAGRAMS_CACHE``, else ``$XDG_CACHE_HOME/learning-diagrams``, else ``~/.cache/learning-diagrams``."""
    if os.environ.get("LEARNING_DIAGRAMS_CACHE"):
        return Path(os.environ["LEARNING_DIAGRAMS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "learning-diagrams"


def _key(paths: Sequence[Path], classes: Sequence[str]) -> str:
    digest = hashlib.sha256()
    settings = {
        "version": _RENDER_VERSION,
        "scale": SCALE,
        "size": SIZE,
        "em": EM,
        "baseline": BASELINE,
        "classes": list(classes),
    }
    digest.update(json.dumps(settings, ensure_ascii=False).encode())
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def glyphs(
    *,
    fonts: Mapping[str, tuple[str, Sequence[str]]] | None = None,
    cache: str | os.PathLike | None | bool = None,
    refresh: bool = False,
) -> GlyphSet:
    """The font-glyph data set: rendered once, then loaded from the cache.

    Parameters
    ----------
    fonts : mapping, optional
        Font files in the form of :data:`FONT_FILES`; default the pinned Debian fonts.
    cache : path-like, bool or None
        The cache folder (default, or ``True``: :func:`cache_dir`); ``False``: neither read nor write a cache.
    refresh : bool
        Render again even when a cached copy exists (and replace it).

    Raises
    ------
    FontsMissingError
        (a :class:`~.datasets.DataMissingError`, a ``FileNotFoundError``) when a
        font file is missing; the message gives the ``apt-get install`` command.
    """
    paths = font_files(fonts)
    classes = character_classes()
    folder = None if cache is False else cache_dir() if cache is None or cache is True else Path(cache)
    file = folder / f"glyphs-{_key(paths, classes)}.npz" if folder is not None else None
    if file is not None and file.is_file() and not refresh:
        with np.load(file, allow_pickle=False) as z:
            return GlyphSet(
                z["images"], z["labels"], z["fonts"], [str(c) for c in z["classes"]], [str(f) for f in z["font_names"]]
            )
    data = render(paths, classes)
    if file is not None:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            images=data.images,
            labels=data.labels,
            fonts=data.fonts,
            classes=np.asarray(data.classes),
            font_names=np.asarray(data.font_names),
        )
        file.parent.mkdir(parents=True, exist_ok=True)  # the cache folder is ours to create
        write_atomic(file, buffer.getvalue())
    return data


def grid(data: GlyphSet, classes: Sequence[str], fonts: int = 16, zoom: int = 2):
    """A PIL image: one row per class in ``classes`` (by any of its characters), ``fonts`` images spread over its fonts."""
    from PIL import Image

    rows = []
    for char in classes:
        k = next(i for i, name in enumerate(data.classes) if char in name)
        members = data.images[data.labels == k]
        row = list(members[:: max(1, len(members) // fonts)][:fonts])
        row += [np.zeros((SIZE, SIZE), np.uint8)] * (fonts - len(row))
        rows.append(np.concatenate([np.pad(img, 1, constant_values=64) for img in row], axis=1))
    pixels = np.concatenate(rows, axis=0)
    return Image.fromarray(pixels).resize((pixels.shape[1] * zoom, pixels.shape[0] * zoom), Image.Resampling.NEAREST)


def main(argv: list[str] | None = None) -> GlyphSet:
    """Render (or load) the data set, print what it holds, and optionally save a grid of samples."""
    import argparse

    parser = argparse.ArgumentParser(description="The font-glyph few-shot data set: render, cache, summarise.")
    parser.add_argument("--grid", metavar="PATH", help="save a grid of sample glyphs there (.png)")
    parser.add_argument("--refresh", action="store_true", help="render again even if cached")
    args = parser.parse_args(argv)
    try:
        data = glyphs(refresh=args.refresh)
    except FontsMissingError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    splits = split_classes(data.classes)
    print(
        f"{len(data)} images of {len(data.classes)} classes in {len(data.font_names)} fonts "
        f"({data.counts().min()} to {data.counts().max()} a class); cached in {cache_dir()}"
    )
    print("Font packages: " + ", ".join(f"{p} {v}" for p, v in font_package_versions().items()))
    for part, indices in splits.items():
        print(f"{part} ({len(indices)}): " + " ".join(data.classes[i] for i in indices))
    if args.grid:
        grid(data, "AaЖжλ5gGQφЯ", fonts=21).save(args.grid)
        print(f"Saved {args.grid}")
    return data


if __name__ == "__main__":
    main()
