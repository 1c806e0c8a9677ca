"""``python -m training.publish``: copy finished runs into ``models/`` so a deployment ships them.

    python -m training.publish runs/20261125-010850_compact_fcc18a76 runs/20261125-120000_vgg19_fcc18a76
    python -m training.publish runs/<run> --into models --name compact
    python -m training.publish runs/<seed 1 run> runs/<seed 2 run> --metrics-only   # → models/seeds/<run id>/

A frozen-ImageNet transfer run (``--weights imagenet``, no fine-tuning) is
published **head-only**: its head weights and a sha256-pinned reference to the
ImageNet file in Keras' cache, a few kB instead of 76–210 MB, because GitHub
refuses files over 100 MiB. Every other run is re-saved as a full model without
optimizer state. Each published run is checked to give the original's outputs
before anything in ``--into`` is replaced (see :mod:`fer_core.store.publish`).

``--metrics-only`` ships the other seeds of a bundled model's recipe without
their weights (three JSON files each, in ``<into>/seeds/``): Compare and Home
then read the bundled model as mean ± spread over its seeds.

Exit codes: 0 done, 2 bad input or a run that cannot be published (one-line message).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.publish", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished run folder(s)")
    p.add_argument("--into", default="models", help="folder the app ships runs from (default: models)")
    p.add_argument("--name", help="published folder name (one run only; default: the model id, e.g. vgg19)")
    p.add_argument("--full", action="store_true",
                   help="always write a full model.keras (no download of ImageNet weights at load time)")
    p.add_argument("--metrics-only", action="store_true",
                   help="ship the runs' metrics, curves and config without weights, as seed repeats in <into>/seeds/ "
                        "(the spread over seeds in Compare and Home)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    from fer_core.errors import FERError
    from fer_core.store.runs import load_run

    if args.metrics_only:
        if args.name or args.full:
            print("error: --metrics-only keeps each run's id and ships no model; drop --name/--full", file=sys.stderr)
            return 2
        from fer_core.store.publish import publish_metrics

        try:
            dests = [publish_metrics(src, args.into) for src in args.runs]
        except FERError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for d in dests:
            print(f"{d}: seed repeat (metrics, curves, config; no weights)", flush=True)
        return 0
    if args.name and len(args.runs) > 1:
        print("error: --name takes one run; publish several under their model ids", file=sys.stderr)
        return 2
    try:
        dests = []
        for src in args.runs:  # check every run and destination before the first (slow) publish
            dests.append(Path(args.into) / (args.name or load_run(src).model_name))
        clash = {d for d in dests if dests.count(d) > 1}
        if clash:
            raise FERError(f"two runs would be published as {sorted(map(str, clash))[0]}; publish them one at a "
                           "time with --name")
        return _publish_all(args.runs, dests, full=args.full)
    except FERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _publish_all(srcs: list[str], dests: list[Path], *, full: bool) -> int:
    from fer_core.store.publish import publish_run

    for src, dest in zip(srcs, dests):
        print(publish_run(src, dest, full=full).describe(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
