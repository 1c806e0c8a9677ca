"""``python -m training.bundle RUN_DIR DEST``: the older name of ``python -m training.publish``.

    python -m training.bundle runs/20261123-205109_baseline_fcc18a76 models/baseline

Kept because the README's reproduction commands use it; it publishes one run
into exactly ``DEST`` (see :mod:`training.publish` and :mod:`fer_core.store.publish`).
"""

from __future__ import annotations

import sys
from pathlib import Path


def bundle(src: str | Path, dest: str | Path) -> Path:
    """Publish run ``src`` as ``dest``; returns ``dest``."""
    from fer_core.store.publish import publish_run

    return publish_run(src, dest).dest


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m training.bundle RUN_DIR DEST (e.g. models/compact)", file=sys.stderr)
        return 2
    from training.publish import main as publish_main

    dest = Path(argv[1])
    return publish_main([argv[0], "--into", str(dest.parent), "--name", dest.name])


if __name__ == "__main__":
    sys.exit(main())
