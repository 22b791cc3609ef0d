"""Column specifications: what each table column is and how it is modelled."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Hashable, Optional, Sequence, Tuple

#: Likelihood kinds, in the vocabulary of the HI-VAE ``data_types.csv`` format
#: plus ``"binary"`` (a two-class ``"cat"`` column, modelled by a Bernoulli).
KINDS = ("real", "pos", "count", "binary", "cat", "ordinal")
DISCRETE_KINDS = ("binary", "cat", "ordinal")


@dataclass(frozen=True)
class ColumnSpec:
    """How one column is modelled.

    Parameters
    ----------
    name : hashable
        The column label (a DataFrame column name, or the position for arrays).
    kind : str
        One of :data:`KINDS`.
    categories : tuple or None
        For ``binary``, ``cat`` and ``ordinal`` columns the category labels in
        code order (code ``i`` stands for ``categories[i]``; for ordinal
        columns the order is the ordinal order). ``None`` for numeric kinds.
    """

    name: Hashable
    kind: str
    categories: Optional[Tuple] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(
                f"column {self.name!r}: unknown likelihood {self.kind!r}; "
                f"valid kinds are {', '.join(KINDS)}"
            )
        if self.kind in DISCRETE_KINDS:
            if self.categories is None or len(self.categories) < 2:
                raise ValueError(
                    f"column {self.name!r}: a {self.kind} column needs at least "
                    "two categories"
                )
            if self.kind == "binary" and len(self.categories) != 2:
                raise ValueError(
                    f"column {self.name!r}: a binary column has exactly two "
                    f"categories, got {len(self.categories)}"
                )
        elif self.categories is not None:
            raise ValueError(
                f"column {self.name!r}: a {self.kind} column takes no categories"
            )

    @property
    def n_classes(self) -> Optional[int]:
        return None if self.categories is None else len(self.categories)


def column_position(key, columns: Sequence[Hashable], parameter: str) -> int:
    """Position of the column that ``key`` names in ``columns``: a label, else a position.

    Raises a ``ValueError`` that names ``parameter`` and the unknown key.
    """
    columns = list(columns)
    if key in columns:
        return columns.index(key)
    if isinstance(key, Integral) and not isinstance(key, bool) and 0 <= key < len(columns):
        return int(key)
    raise ValueError(
        f"{parameter} names the column {key!r}, which X does not have "
        f"(columns: {columns[:10]}{' ...' if len(columns) > 10 else ''})"
    )
