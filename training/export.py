"""``python -m training.export``: a run's model as a file another program can use, with its labels.json.

    python -m training.export models/compact --format onnx --out exports/compact-onnx
    python -m training.export runs/<run> --format tflite_int8 --out exports/int8 --data ../fer2013.npz

Formats: keras, saved_model, tflite, tflite_int8 (need ai-edge-litert), onnx
(needs tf2onnx, onnxruntime): ``pip install -r requirements-export.txt``.
Each export is reloaded in its own runtime and compared with the Keras model
before ``--out`` is written (float formats: max |Δp| ≤ 1e-4; int8: top-1
agreement ≥ 98 % on faces). int8 is full-integer, calibrated on the run's own
train faces (``--data``, else the dataset file its metrics name if it is here),
or dynamic-range when those faces are not available or ``--int8 dynamic-range``
(see fer_core.store.export).

Exit codes: 0 done, 2 bad input, a missing package or a failed check (one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FORMAT_IDS = ("keras", "saved_model", "tflite", "tflite_int8", "onnx")  # = fer_core.store.export.FORMATS, without importing it


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: …``) and exit code 2, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="python -m training.export", description=__doc__.split("\n\n")[0])
    p.add_argument("run", metavar="RUN_DIR", help="a finished run folder (runs/<id>, models/compact, ...)")
    p.add_argument("--format", required=True, choices=FORMAT_IDS, metavar="|".join(FORMAT_IDS),
                   help="keras, saved_model, tflite (float32), tflite_int8, onnx")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="export folder to write (missing, empty, or an earlier export, which is replaced)")
    p.add_argument("--data", metavar="PATH|demo",
                   help="tflite_int8: faces to calibrate on and check with (default: the run's own dataset when "
                        "it is on this machine, else demo faces for the check and dynamic-range quantisation)")
    p.add_argument("--int8", default="auto", choices=("auto", "full-integer", "dynamic-range"),
                   help="tflite_int8 quantisation: full-integer (int8 weights and activations, calibrated on the run's "
                        "own train faces), dynamic-range (int8 weights, float activations, no calibration), or auto "
                        "(full-integer when the faces are here and it agrees, else dynamic-range; the default)")
    p.add_argument("--check-faces", type=int, default=300, metavar="N", help="tflite_int8: faces checked (default 300)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from fer_core.errors import FERError
    from fer_core.store.export import export_run, unavailable_reason
    from fer_core.store.runs import load_run

    try:
        reason = unavailable_reason(args.format)  # before loading TensorFlow: refuse in a fraction of a second
        if reason:
            raise FERError(reason)
        if args.check_faces < 10:
            raise FERError(f"--check-faces {args.check_faces}: check at least 10 faces")
        run = load_run(args.run)
        done = export_run(run, args.format, args.out, data=args.data, check_faces=args.check_faces, int8_mode=args.int8)
        print(done.describe(), flush=True)
        return 0
    except FERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
