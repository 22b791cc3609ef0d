"""Command line: ``heterovae impute in.csv out.csv`` and ``heterovae detect in.csv``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import numpy as np
import pandas as pd

from .columns import KINDS


def _column_name(name: str, columns) -> str:
    """A column named on the command line: its label, or its position given as digits."""
    if name not in columns and name.isdigit() and int(name) < len(columns):
        return columns[int(name)]
    return name


def _type_overrides(pairs: List[str], columns) -> dict:
    overrides = {}
    for pair in pairs:
        name, sep, kind = pair.rpartition("=")
        if not sep or not name:
            raise ValueError(f"--type expects COLUMN=KIND, got {pair!r}")
        name = _column_name(name, columns)
        if name in overrides:
            raise ValueError(f"--type names column {name!r} twice")
        overrides[name] = kind
    return overrides


def _likelihoods(args, table: "_Table"):
    if args.data_types:
        if args.type:
            raise ValueError("give either --data-types or --type, not both")
        return args.data_types
    return _type_overrides(args.type, list(table.frame.columns)) or None


def _value_codes(args, columns):
    """The imputer's ``value_codes``: ``--code`` names (labels, or positions given as digits),
    ``None`` for ``--no-codes``, else the estimator's own choice, ``"auto"``."""
    if args.no_codes:
        if args.code:
            raise ValueError("--code and --no-codes contradict each other")
        return None
    return [_column_name(name, columns) for name in args.code] or "auto"


def _epochs(text):
    return text if text == "auto" else int(text)


def _parse_moo(text: Optional[str]):
    if text is None or text == "none":
        return None
    parts = tuple(p.strip() for p in text.split(","))
    return parts[0] if len(parts) == 1 else parts


class _Table:
    """A CSV file read twice with the same missing-value rules: as values to model, and as
    the text of every cell, so observed cells are written back exactly as they were read.

    A first column with an empty header is the row index pandas writes: it is copied
    to the output and not modelled.
    """

    def __init__(self, path: str, header: bool, sep: str):
        sep = self.sep = {"\\t": "\t"}.get(sep, sep)  # --sep '\t' from a shell is a backslash and a t
        self.frame = pd.read_csv(path, header=0 if header else None, sep=sep)
        # the text holds the header as its first row: pandas renames duplicate
        # headers (a, a.1), and the file's own are written back
        self.text = pd.read_csv(path, header=None, dtype=str, sep=sep)
        self.header = None
        if header:
            self.header = ["" if pd.isna(h) else h for h in self.text.iloc[0]]
            self.text = self.text.iloc[1:].reset_index(drop=True)
        else:
            self.frame.columns = [f"c{j}" for j in range(self.frame.shape[1])]
        self.text.columns = self.frame.columns
        if self.frame.shape[1] == 1:
            name = str(self.frame.columns[0]) if header else str(self.text.iloc[0, 0])
            for other in (";", "\t", "|"):
                if other != sep and other in name:
                    shown = "\\t" if other == "\t" else other
                    raise ValueError(f"the file has a single column, whose {'header' if header else 'first cell'} "
                                     f"contains '{shown}': if that separates the fields, pass --sep '{shown}'")
        self.index = None
        if header and self.frame.shape[1] > 1 and self.header[0] == "":
            self.index = self.text.iloc[:, 0]
            self.frame, self.text, self.header = self.frame.iloc[:, 1:], self.text.iloc[:, 1:], self.header[1:]

    def write(self, path: str, completed: pd.DataFrame, specs) -> None:
        out = self.text.copy()
        for j, spec in enumerate(specs):
            missing = self.frame.iloc[:, j].isna().to_numpy()
            if missing.any():
                whole = spec.kind in _WHOLE_KINDS
                out.iloc[missing, j] = [_format(v, whole) for v in completed.iloc[missing, j]]
        if self.index is not None:
            out.insert(0, "", self.index, allow_duplicates=True)
        header = False if self.header is None else ([""] if self.index is not None else []) + list(self.header)
        out.to_csv(path, index=False, header=header, sep=self.sep)


#: Kinds whose values are whole numbers or labels: an imputed 2.0 is written "2", as the
#: column's observed cells are (pandas reads a column of integers with blanks as floats).
_WHOLE_KINDS = ("count", "binary", "cat", "ordinal")


def _format(value, whole: bool) -> str:
    if isinstance(value, (bool, np.bool_, str)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if whole:
        return str(int(round(value)))
    return repr(value)


def _check_writable(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write {path!r}: the folder {folder!r} does not exist")


def _impute(args) -> int:
    from .imputer import HeterogeneousVAEImputer

    _check_writable(args.output)  # before training, not after it
    table = _Table(args.input, not args.no_header, args.sep)
    imputer = HeterogeneousVAEImputer(
        model=args.model,
        moo=_parse_moo(args.moo),
        likelihoods=_likelihoods(args, table),
        value_codes=_value_codes(args, list(table.frame.columns)),
        max_epochs=args.epochs,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    completed = imputer.fit_transform(table.frame)
    table.write(args.output, completed, imputer.specs_)
    frame = table.frame
    n_missing = int(frame.isna().sum().sum())
    print(f"imputed {n_missing} missing cells in {frame.shape[0]} rows x {frame.shape[1]} columns -> {args.output}",
          file=sys.stderr)
    return 0


def _detect(args) -> int:
    from .detection import LikelihoodDetector

    table = _Table(args.input, not args.no_header, args.sep)
    specs = LikelihoodDetector(likelihoods=_likelihoods(args, table)).fit(table.frame).specs_
    width = max(len(str(s.name)) for s in specs)
    for s in specs:
        extra = "" if s.categories is None else f"  ({len(s.categories)} categories)"
        print(f"{str(s.name):<{width}}  {s.kind}{extra}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heterovae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("input", help="CSV file; empty cells (and pandas' missing markers: NA, NaN, null, None, "
                                     "n/a, ...) are missing. A first column with an empty header is the row index: "
                                     "copied to the output, not modelled")
        p.add_argument("--no-header", action="store_true", help="the CSV has no header row")
        p.add_argument("--sep", default=",", help="field separator (default: ',')")
        p.add_argument("--type", action="append", default=[], metavar="COLUMN=KIND",
                       help=f"override a column's likelihood; KIND is one of {', '.join(KINDS)}; repeatable")
        p.add_argument("--data-types", metavar="CSV", help="a HI-VAE data_types.csv giving every column's type")

    imp = sub.add_parser("impute", help="fill the missing cells of a CSV file")
    common(imp)
    imp.add_argument("output", help="where to write the completed CSV")
    imp.add_argument("--model", default="vae", help="model variant (default: vae)")
    imp.add_argument("--moo", default=None, help="multi-objective method(s), e.g. 'imtlg,pcgrad' (default: none)")
    imp.add_argument("--code", action="append", default=[], metavar="COLUMN",
                     help="give each exact value of this numeric column a code of its own, for a number that "
                          "names something (a date, an id) that other columns follow from; repeatable "
                          "(default: the columns whose exact values predict a discrete column better than "
                          "their rank, usually none)")
    imp.add_argument("--no-codes", action="store_true", help="give no column exact-value codes")
    imp.add_argument("--epochs", type=_epochs, default="auto",
                     help="training epochs, or 'auto': about 4,000 steps, 48 to 200 epochs, for the vae model (default: auto)")
    imp.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    imp.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    imp.add_argument("--verbose", type=int, default=0, help="1 prints one line per epoch")
    imp.set_defaults(func=_impute)

    det = sub.add_parser("detect", help="print the likelihood chosen for each column")
    common(det)
    det.set_defaults(func=_detect)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        # OSError: an input or --data-types file that cannot be read
        print(f"heterovae: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
