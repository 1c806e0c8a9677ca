#!/usr/bin/env python
"""FER Studio speed benchmark: training, prediction, memory and the levers that move them.

    python benchmarks/speed.py            # full   → benchmarks/results/speed.json
    python benchmarks/speed.py --quick    # < 3 min → benchmarks/results/speed_quick.json
    python benchmarks/speed.py --smoke    # seconds, for tests → benchmarks/results/speed_smoke.json
    python benchmarks/speed.py --skip train_all_five,levers --out /tmp/s.json

The entry point only: the sections live in ``benchmarks/speedbench/``, one
module each (its ``__init__`` lists them). The worker processes some sections
start run this file again with ``--_worker``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.speedbench.cli import main  # noqa: E402
from benchmarks.speedbench.common import CpuMeter  # noqa: E402, F401  (benchmarks/photos.py imports it from here)

if __name__ == "__main__":
    sys.exit(main())
