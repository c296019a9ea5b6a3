"""The console side of logging: a table of records that fits the terminal, and a progress bar.

**Columns.** By default (``columns="default"``) the table shows the few numbers to
watch, in this order, those a record has: ``iteration``, ``env_steps``,
``return_mean``, ``window_epis`` (episodes in the return window),
``eval_return_mean``, the first two ``*loss`` keys, ``sps`` and ``time``; a row is at
most ``width`` (100) characters. ``columns="all"`` (wide mode) shows every key of the
record; a list of keys shows those keys, in that order. The CSV and TensorBoard always
get every key.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TextIO

#: ``"default"`` (or None), ``"all"``, or a list of keys
Columns = str | Sequence[str] | None

#: the default columns (besides the first two ``*loss`` keys, which go before ``sps``)
DEFAULT_COLUMNS = ("iteration", "env_steps", "return_mean", "window_epis", "eval_return_mean", "sps", "time")
NUM_LOSSES = 2
DEFAULT_WIDTH = 100
CELL_WIDTH = 10  #: the widest cell :func:`format_number` writes (for names, the widest shown)
MIN_CELL = 7

_SHORT = {
    "iteration": "iter",
    "env_steps": "steps",
    "epi_len_mean": "len",
    "explained_var": "expl_var",
    "window_epis": "epis",
    "eval_return_mean": "eval_ret",
    "eval_return_std": "eval_std",
}


def short_name(key: str, limit: int | None = CELL_WIDTH) -> str:
    """The table header of ``key``: ``return_mean`` -> ``ret_mean``, cut to ``limit`` characters (None: whole)."""
    if key in _SHORT:
        return _SHORT[key]
    name = f"ret_{key.removeprefix('return_')}" if key.startswith("return_") else key.replace("return", "ret")
    return name[:limit]


def format_number(v: float, width: int = CELL_WIDTH, decimals: int | None = None) -> str:
    """``v`` in at most ``width`` (>= 7) characters.

    Integers are written whole where they fit; other numbers with ``decimals`` decimals
    if given and it fits, else with 4 significant digits or fewer. NaN (nothing to
    report yet, e.g. ``sps`` of the first record) is written ``-``.
    """
    v = float(v)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return str(v)
    if decimals is not None and len(f"{v:.{decimals}f}") <= width:
        return f"{v:.{decimals}f}"
    if v.is_integer() and len(str(int(v))) <= width:
        return str(int(v))
    for digits in range(4, 0, -1):
        text = f"{v:.{digits}g}"
        if len(text) <= width:
            return text
    return text


#: decimals of keys better read at a fixed precision (steps per second, seconds)
_DECIMALS = {"sps": 0, "time": 1}


def _cell_width(key: str, limit: int | None = CELL_WIDTH) -> int:
    narrow = key in ("iteration", "window_epis", "sps", "time")
    return max(len(short_name(key, limit)), MIN_CELL if narrow else CELL_WIDTH)


def row_width(keys: Sequence[str]) -> int:
    """Characters in a table row with these columns."""
    return sum(_cell_width(k) for k in keys) + max(len(keys) - 1, 0)


def default_columns(keys: Sequence[str], width: int = DEFAULT_WIDTH) -> list[str]:
    """The default columns among ``keys`` (module docstring), dropping the least needed ones to fit ``width``."""
    present = set(keys)
    losses = [k for k in keys if k.endswith("loss")][:NUM_LOSSES]
    head = [k for k in DEFAULT_COLUMNS if k in present and k not in ("sps", "time")]
    cols = head + losses + [k for k in ("sps", "time") if k in present]
    for key in [*reversed(losses), "eval_return_mean", "time", "sps", "window_epis", "env_steps"]:
        if row_width(cols) <= width:
            break
        if key in cols:
            cols.remove(key)
    return cols


def check_columns(columns: Columns) -> None:
    """Raise ValueError unless ``columns`` is ``"default"``, None, ``"all"`` or a list of key names."""
    if isinstance(columns, str):
        if columns not in ("default", "all"):
            raise ValueError(f"columns must be 'default', 'all' or a list of keys, got {columns!r}")
    elif columns is not None and not all(isinstance(k, str) for k in columns):
        raise ValueError(f"columns must be 'default', 'all' or a list of key names, got {columns!r}")


def select_columns(record: Mapping[str, float], columns: Columns, width: int = DEFAULT_WIDTH) -> list[str]:
    """The keys of ``record`` the table shows for ``columns`` (``"default"``/None, ``"all"`` or a list of keys)."""
    check_columns(columns)
    if columns is None or columns == "default":
        return default_columns(list(record), width)
    if columns == "all":
        return list(record)
    return [k for k in columns if k in record]


class ConsoleTable:
    """Prints records as rows of a table under a header (repeated every ``header_every`` rows).

    Args:
        write: where lines go (``print``, a progress bar's ``write``, ``list.append``).
        columns: ``"default"`` (or None), ``"all"`` (wide mode) or a list of keys (module docstring).
        width: the most characters of a default row.
        header_every: repeat the header every this many rows.
        note: a line printed above the first header, saying what the numbers are.
    """

    def __init__(
        self,
        write: Callable[[str], Any],
        *,
        columns: Columns = "default",
        width: int = DEFAULT_WIDTH,
        header_every: int = 20,
        note: str | None = None,
    ) -> None:
        check_columns(columns)
        self.write, self.columns, self.width = write, columns, width
        self.header_every, self.note = header_every, note
        self._cols: list[str] = []
        self._n_rows = 0

    @property
    def _limit(self) -> int | None:
        """How long a header name may be: cut in the default table, whole in the others."""
        return CELL_WIDTH if self.columns in (None, "default") else None

    def header(self, keys: Sequence[str]) -> str:
        """The header line for these columns."""
        return " ".join(f"{short_name(k, self._limit):>{_cell_width(k, self._limit)}}" for k in keys)

    def format_row(self, record: Mapping[str, float], keys: Sequence[str]) -> str:
        """The row line of ``record`` for these columns."""
        cells = []
        for k in keys:
            w = _cell_width(k, self._limit)
            cells.append(f"{format_number(record[k], w, _DECIMALS.get(k)):>{w}}")
        return " ".join(cells)

    def row(self, record: Mapping[str, float]) -> None:
        """Print ``record`` (with a header first when the columns change or it is due)."""
        cols = select_columns(record, self.columns, self.width)
        if self._n_rows == 0 and isinstance(self.columns, list | tuple):
            missing = [k for k in self.columns if k not in record]
            if missing:  # a typo would otherwise just print an empty table
                warnings.warn(f"console columns {missing} are not in the record (yet); it has {sorted(record)}",
                              stacklevel=3)
        if self._n_rows == 0 and self.note:
            self.write(self.note)
        if cols != self._cols or self._n_rows % self.header_every == 0:
            self._cols = cols
            self.write(self.header(cols))
        self.write(self.format_row(record, cols))
        self._n_rows += 1


# ---------------------------------------------------------------------------- progress bar
class ProgressBar:
    """A progress bar over env steps: tqdm's if the ``progress`` extra is installed, else none.

    :meth:`write` prints a line above the bar (use it as a :class:`~trajkit.logger.Logger`'s ``console``).
    """

    def __init__(
        self,
        total: int,
        initial: int = 0,
        enabled: bool = True,
        desc: str = "env steps",
        stream: TextIO | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(
                    total=total,
                    initial=initial,
                    desc=desc,
                    unit="step",
                    file=self._stream,
                    dynamic_ncols=True,
                    smoothing=0.1,
                )

    @property
    def active(self) -> bool:
        """Whether a real (tqdm) bar is shown."""
        return self._bar is not None

    def update(self, n: int) -> None:
        """Advance by ``n`` steps."""
        if self._bar is not None:
            self._bar.update(n)

    def write(self, line: str) -> None:
        """Print ``line`` without breaking the bar (to stdout)."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress_bar(total: int, initial: int = 0, enabled: bool = True) -> ProgressBar:
    """A :class:`ProgressBar` over ``total`` env steps starting at ``initial``."""
    return ProgressBar(total, initial, enabled)
