"""Copy a finished run into ``models/<name>/`` so the app ships it.

    python -m training.bundle runs/20261123-205109_baseline_fcc18a76 models/baseline

The copy keeps ``history.json`` and ``config.json`` as they are, records in
``metrics.json`` where it came from (``bundled_from``) and the new file size, and re-saves ``model.keras`` with architecture and weights only (no
optimizer state; runs written before the trainer did this carried Adam's
slots, three times the weights' size). It checks that the re-saved model gives
the same outputs as the original before replacing anything.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np


def bundle(src: str | Path, dest: str | Path) -> Path:
    from fer_core._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fer_core.runs import load_run
    from fer_core.train import save_inference_model

    run = load_run(src)
    model = run.load_model()
    dest = Path(dest)
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.exists() else None) as tmp:
        staged = Path(tmp) / "run"
        staged.mkdir()
        for name in ("history.json", "config.json"):
            shutil.copy2(run.path / name, staged / name)
        save_inference_model(model, staged / "model.keras")
        metrics = dict(run.metrics, bundled_from=run.id, model_size_bytes=(staged / "model.keras").stat().st_size)
        _complete_init_from(metrics, run.path.parent)
        (staged / "metrics.json").write_text(json.dumps(metrics, indent=1))
        again = load_run(staged).load_model()
        size, ch = run.config["model"]["image_size"], run.config["model"]["channels"]
        x = np.random.default_rng(0).integers(0, 256, (4, size, size, ch)).astype(np.float32)
        if not np.allclose(np.asarray(model(x)), np.asarray(again(x)), atol=1e-6):
            raise SystemExit("error: re-saved model disagrees with the original; nothing bundled")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), dest)
    return dest


def _complete_init_from(metrics: dict, runs_dir: Path) -> None:
    """Runs continued with --init-from before the trainer recorded the earlier run's time: read it from
    that run's folder (beside this one) so the bundle states the whole training time."""
    init = metrics.get("init_from")
    if not init or init.get("train_seconds") is not None or "train_seconds_total" in metrics:
        return
    from fer_core.runs import load_run
    from fer_core.train import init_from_record

    earlier = runs_dir / init["run"]
    if earlier.is_dir():
        init.update(init_from_record(load_run(earlier)))
        metrics["train_seconds_total"] = round(metrics["train_seconds"] + init["train_seconds"], 2)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m training.bundle RUN_DIR DEST (e.g. models/compact)", file=sys.stderr)
        return 2
    from fer_core.errors import FERError

    try:
        out = bundle(*argv)
    except FERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"bundled {argv[0]} → {out} ({(out / 'model.keras').stat().st_size / 1e6:.1f} MB model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
