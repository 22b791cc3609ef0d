"""Command line: ``heterovae impute in.csv out.csv`` and ``heterovae detect in.csv``."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import pandas as pd

from .columns import KINDS


def _type_overrides(pairs: List[str], columns) -> dict:
    overrides = {}
    for pair in pairs:
        name, sep, kind = pair.rpartition("=")
        if not sep or not name:
            raise SystemExit(f"--type expects COLUMN=KIND, got {pair!r}")
        if name not in columns and name.isdigit() and int(name) < len(columns):
            name = columns[int(name)]
        overrides[name] = kind
    return overrides


def _likelihoods(args, frame):
    if args.data_types:
        if args.type:
            raise SystemExit("give either --data-types or --type, not both")
        return args.data_types
    return _type_overrides(args.type, list(frame.columns)) or None


def _epochs(text):
    return text if text == "auto" else int(text)


def _parse_moo(text: Optional[str]):
    if text is None or text == "none":
        return None
    parts = tuple(p.strip() for p in text.split(","))
    return parts[0] if len(parts) == 1 else parts


def _read(path: str, header: bool) -> pd.DataFrame:
    frame = pd.read_csv(path, header=0 if header else None)
    if not header:
        frame.columns = [f"c{j}" for j in range(frame.shape[1])]
    return frame


def _impute(args) -> int:
    from .imputer import HeterogeneousVAEImputer

    frame = _read(args.input, not args.no_header)
    imputer = HeterogeneousVAEImputer(
        model=args.model,
        moo=_parse_moo(args.moo),
        likelihoods=_likelihoods(args, frame),
        max_epochs=args.epochs,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    completed = imputer.fit_transform(frame)
    # A CSV has no integer column with blanks: pandas reads one as floats, whose
    # imputed counts would be fractional means. Counts go back as whole numbers.
    for spec in imputer.specs_:
        if spec.kind == "count":
            completed[spec.name] = completed[spec.name].round().astype("Int64")
    completed.to_csv(args.output, index=False, header=not args.no_header)
    n_missing = int(frame.isna().sum().sum())
    print(f"imputed {n_missing} missing cells in {frame.shape[0]} rows x {frame.shape[1]} columns -> {args.output}",
          file=sys.stderr)
    return 0


def _detect(args) -> int:
    from .detection import LikelihoodDetector

    frame = _read(args.input, not args.no_header)
    specs = LikelihoodDetector(likelihoods=_likelihoods(args, frame)).fit(frame).specs_
    width = max(len(str(s.name)) for s in specs)
    for s in specs:
        extra = "" if s.categories is None else f"  ({len(s.categories)} categories)"
        print(f"{str(s.name):<{width}}  {s.kind}{extra}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heterovae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("input", help="CSV file; empty cells (or NA, NaN) are missing")
        p.add_argument("--no-header", action="store_true", help="the CSV has no header row")
        p.add_argument("--type", action="append", default=[], metavar="COLUMN=KIND",
                       help=f"override a column's likelihood; KIND is one of {', '.join(KINDS)}; repeatable")
        p.add_argument("--data-types", metavar="CSV", help="a HI-VAE data_types.csv giving every column's type")

    imp = sub.add_parser("impute", help="fill the missing cells of a CSV file")
    common(imp)
    imp.add_argument("output", help="where to write the completed CSV")
    imp.add_argument("--model", default="vae", help="model variant (default: vae)")
    imp.add_argument("--moo", default=None, help="multi-objective method(s), e.g. 'imtlg,pcgrad' (default: none)")
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
