"""``python -m predict``: every face in photos, folders, zips and videos, one row each, as CSV or JSON lines.

Examples::

    python -m predict photo.jpg                                  # CSV on stdout, bundled compact model
    python -m predict photos/ party.zip clip.mp4 --out results.csv
    python -m predict photos/ --models compact,baseline --json --out results.jsonl
    python -m predict clip.mp4 --fps 2 --runs runs/<run id> --out -
    python -m predict --list-models

Inputs are recognised by content (a renamed file still reads as what it is).
One row per face per photo, or per face per sampled video frame, in the
layout of :mod:`fer_core.inference.rows`. Exit codes: 0 done (files skipped inside a
folder or zip are named on stderr), 2 bad input (one line on stderr), 130
interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer_core.fit.progress import ConsoleLines  # noqa: E402  (no TensorFlow: plain stream output)


def build_parser() -> argparse.ArgumentParser:
    from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT
    from fer_core.inference.video import DEFAULT_FPS

    p = argparse.ArgumentParser(prog="python -m predict", description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="photos, folders (searched recursively), zips or videos")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--models", default=None,
                       help=f"comma-separated model or run ids (default: {BUNDLED_PREDICT_DEFAULT}); a model id means "
                            "its bundled run, else its newest run in $FER_RUNS_DIR or runs/")
    which.add_argument("--runs", default=None, help="comma-separated run folders")
    p.add_argument("--list-models", action="store_true", help="print the runs --models can name and exit")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS,
                   help=f"videos: frames analysed per second of video time (default {DEFAULT_FPS:g})")
    p.add_argument("--video-seconds", type=float, default=None, help="videos: analyse only the first seconds")
    p.add_argument("--max-faces", type=int, default=0,
                   help="classify only the K largest faces of a photo or frame (default 0 = all)")
    p.add_argument("--json", action="store_true", help="write JSON lines (one object per row) instead of CSV")
    p.add_argument("--out", default="-", help="output file (default '-' = standard output)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (skipped files are still named)")
    return p


class ConsoleBar(ConsoleLines):
    """Progress on stderr: a redrawn bar on a terminal, a line every tenth of the files otherwise (CI, logs).

    Skipped files always get their own line, so a log names every file left out.
    """

    def __init__(self, stream=None, *, quiet: bool = False):
        super().__init__(stream)
        self.quiet = quiet
        self.t0 = time.perf_counter()
        self._drawn = 0.0
        self._tenth = -1

    def on_event(self, e: dict) -> None:
        if e.get("event") == "skip":
            self.line(f"skipped {e['message']}")
            return
        if self.quiet or e.get("event") not in ("file", "video"):
            return
        done, total = e.get("done", 0), e.get("total") or 0
        elapsed = time.perf_counter() - self.t0
        share = (done + (e.get("fraction", 0.0) if e["event"] == "video" else 0.0)) / max(total, 1)
        if self.tty:
            now = time.perf_counter()
            if now - self._drawn < 0.1 and done < total:
                return
            self._drawn = now
            bar = "#" * int(24 * share)
            rate = f" · {done / elapsed:.1f} files/s" if elapsed > 0 and done else ""
            self.stream.write(f"\r\033[K[{bar:<24}] {done}/{total} files{rate} · {e['file'][-40:]}")
            self.stream.flush()
        elif e["event"] == "file" and int(10 * done / max(total, 1)) > self._tenth:
            self._tenth = int(10 * done / max(total, 1))
            self.line(f"  {done}/{total} files ({share:.0%}) · {elapsed:.1f} s")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _list_models() -> int:
    from fer_core import list_runs
    from fer_core.store.runs import BUNDLED_DIR

    root = os.environ.get("FER_RUNS_DIR") or "runs"
    listing = list_runs(root, bundled_roots=(BUNDLED_DIR,))
    for r in sorted(listing.runs, key=lambda r: (not r.bundled, r.model_name, r.id)):
        where = "bundled" if r.bundled else root
        print(f"{r.model_name:<20} {r.id:<48} {where}, {r.dataset_name}, {len(r.metrics['class_names'])} classes, "
              f"accuracy {r.metrics['accuracy']:.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.list_models:
        return _list_models()
    bar = ConsoleBar(quiet=args.quiet)
    if not args.inputs:
        bar.line("error: no INPUT given: name photos, folders, zips or videos (python -m predict --help)")
        return 2
    if args.fps <= 0 or args.max_faces < 0 or (args.video_seconds is not None and args.video_seconds <= 0):
        bar.line("error: --fps and --video-seconds must be positive, --max-faces 0 or more")
        return 2

    from fer_core.inference.batch import BatchReport, expand_paths, iter_rows, select_runs
    from fer_core.errors import FERError
    from fer_core.inference.rows import write_csv, write_jsonl

    # Everything that can be refused is checked before TensorFlow loads: bad input costs a second, not ten.
    try:
        expansion = expand_paths(args.inputs)
        runs = select_runs((args.models or "").split(","), (args.runs or "").split(","))
    except FERError as exc:
        bar.line(f"error: {exc}")
        return 2
    with expansion:
        for problem in expansion.problems:
            bar.line(f"skipped {problem}")
        if not expansion.sources:
            bar.line("error: no photos or videos found in the inputs")
            return 2
        report = BatchReport()
        partial = None
        try:
            from fer_core.inference.predictor import Predictor

            predictor = Predictor(runs)
            bar.t0 = time.perf_counter()
            rows = iter_rows(expansion.sources, predictor, fps=args.fps, max_faces=args.max_faces or None,
                             video_max_seconds=args.video_seconds, on_event=bar.on_event, report=report)
            write = write_jsonl if args.json else write_csv
            if args.out == "-":
                write(rows, predictor.class_names, sys.stdout)
                sys.stdout.flush()
            else:
                # Written beside the target, renamed when complete: an interrupted run leaves no file that looks whole.
                partial = f"{args.out}.partial"
                with open(partial, "w", newline="") as fh:
                    write(rows, predictor.class_names, fh)
                os.replace(partial, args.out)
                partial = None
            predictor.close()
        except FERError as exc:
            bar.line(f"error: {exc}")
            return 2
        except KeyboardInterrupt:
            where = f"; the rows so far are in {partial}" if partial else ""
            bar.line(f"interrupted after {report.photos + report.videos} files{where}")
            return 130
        except OSError as exc:
            bar.line(f"error: cannot write {args.out} ({exc.strerror or exc})")
            return 2
        except Exception as exc:  # a bug or an environment problem: still one line, details on request
            if os.environ.get("FER_DEBUG"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            bar.line(f"error: unexpected {type(exc).__name__}: {first} (set FER_DEBUG=1 for the traceback)")
            return 1
    skipped = len(expansion.problems) + len(report.skipped)
    photos_only = report.photos and report.wall_s and not report.videos  # a clip's time is not photos' time
    rate = f", {report.photos / report.wall_s:.1f} photos/s" if photos_only else ""
    bar.line(f"done: {_n(report.photos, 'photo')} ({_n(report.faces, 'face')}; "
             f"{report.whole_image} without a face, classified whole), {_n(report.videos, 'video')} → "
             f"{_n(report.rows, 'row')} in {report.wall_s:.1f} s{rate}"
             + (f" → {args.out}" if args.out != "-" else "")
             + (f"; {_n(skipped, 'file')} skipped" if skipped else ""))
    if report.photos + report.videos == 0:
        bar.line("error: none of the inputs could be read")
        return 2
    return 0
