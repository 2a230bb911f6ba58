"""The progress bar of a run: the running mean of each value, under short names.

>>> short_name("x·student·soft ≤ x·teacher·soft")
'x·student·s…teacher·soft'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tqdm.auto import tqdm

from ..core.errors import OptionError

__all__ = ["short_name", "Progress"]


def short_name(name: str, width: int = 24) -> str:
    """Shorten ``name`` to at most ``width`` characters for display.

    The rule: a name of at most ``width`` characters is kept whole; a longer
    one keeps its first ``(width - 1) // 2`` and its last
    ``width - 1 - (width - 1) // 2`` characters around an ellipsis ``…``.
    The end gets the extra character because term names ``"p ≤ q"`` differ
    most in their target side. Two names may shorten alike; :class:`Progress`
    tells them apart (see there).

    Parameters
    ----------
    name : str
        The name.
    width : int, default 24
        The most characters to keep, at least 3.

    Examples
    --------
    >>> short_name("total")
    'total'
    >>> short_name("abcdefghij", width=7)
    'abc…hij'
    """
    if width < 3:
        raise OptionError(f"width must be at least 3, got {width}")
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    tail = width - 1 - head
    return f"{name[:head]}…{name[-tail:]}"


class Progress:
    """A progress bar that shows the running mean of each value.

    A :func:`tqdm.auto.tqdm` bar over ``total`` steps (or an unknown number);
    each :meth:`update` advances it by one step and shows, after the bar, the
    mean of each value over all the updates since the bar began that had it.
    ``"total"`` comes first, then the names in the order first seen.

    The keys shown are short: a name is shortened by :func:`short_name` to
    ``width`` characters; if that key is already shown for another name, the
    suffix ``~2`` (then ``~3``, ...) is added to the later name, shortened to
    fit. Keys are given in the order names are first seen and never change
    while the bar lives, so the same run always shows the same keys;
    :attr:`keys` lists them.

    Parameters
    ----------
    total : int or None, default None
        The number of steps, if known.
    desc : str or None, default None
        A label before the bar (e.g. ``"stage 0 · epoch 3"``).
    disable : bool, default False
        Show nothing (the means are still kept).
    file : file-like or None, default None
        Where to draw the bar; None is standard error.
    leave : bool, default True
        Keep the finished bar on screen.
    width : int, default 24
        The most characters of a key (suffixes aside).

    Examples
    --------
    >>> with Progress(total=2, disable=True) as bar:
    ...     bar.update({"total": 1.0})
    ...     bar.update({"total": 2.0})
    >>> bar.means, bar.n
    ({'total': 1.5}, 2)
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        desc: str | None = None,
        disable: bool = False,
        file: Any = None,
        leave: bool = True,
        width: int = 24,
    ) -> None:
        if width < 3:
            raise OptionError(f"width must be at least 3, got {width}")
        self.width = width
        self.n = 0
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._keys: dict[str, str] = {}
        self._bar = tqdm(total=total, desc=desc, disable=disable, file=file, leave=leave, unit="step")

    @property
    def means(self) -> dict[str, float]:
        """The running mean of each value, by full name, ``"total"`` first."""
        return {name: self._sums[name] / self._counts[name] for name in self._order()}

    @property
    def keys(self) -> dict[str, str]:
        """The key shown for each name seen so far."""
        return dict(self._keys)

    def postfix(self) -> dict[str, str]:
        """What the bar shows after itself: key to formatted running mean."""
        return {self._keys[name]: f"{mean:.4g}" for name, mean in self.means.items()}

    def update(self, values: Mapping[str, Any]) -> None:
        """Count one step with its ``values`` (name to float-like) and redraw."""
        for name, value in values.items():
            value = float(value)
            if name not in self._sums:
                self._sums[name], self._counts[name] = 0.0, 0
                self._keys[name] = self._new_key(name)
            self._sums[name] += value
            self._counts[name] += 1
        self.n += 1
        if not self._bar.disable:
            self._bar.set_postfix(self.postfix(), refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Finish the bar (drawing its final state unless disabled)."""
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _order(self) -> list[str]:
        names = list(self._sums)
        return ["total", *(n for n in names if n != "total")] if "total" in self._sums else names

    def _new_key(self, name: str) -> str:
        taken = set(self._keys.values())
        key, count = short_name(name, self.width), 1
        while key in taken:
            count += 1
            suffix = f"~{count}"
            key = short_name(name, max(3, self.width - len(suffix))) + suffix
        return key
