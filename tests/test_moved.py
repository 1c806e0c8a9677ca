"""The flat layout's module paths (fer_core ≤ 0.9) still work for one release (fer_core._moved, CHANGELOG.md)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from fer_core import _moved

ROOT = Path(__file__).resolve().parent.parent


def test_no_file_is_left_at_an_old_path_and_every_new_one_exists():
    for old, new in {**_moved.MOVED, **_moved.ROOMS}.items():
        assert (ROOT / (new.replace(".", "/") + ".py")).is_file(), new
        if old in _moved.MOVED:  # a stub there would stop git following the rename
            assert not (ROOT / (old.replace(".", "/") + ".py")).exists(), old
        else:  # the old module's name is a room now
            assert (ROOT / old.replace(".", "/") / "__init__.py").is_file(), old


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_an_old_path_is_the_new_module_itself(old):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert importlib.import_module(old) is importlib.import_module(_moved.MOVED[old])


def test_old_paths_warn_and_monkeypatching_through_them_reaches_the_callers():
    code = """if True:
        import warnings
        warnings.simplefilter("error", DeprecationWarning)
        import fer_core
        import fer_core.inference.rows as rows                     # new paths never warn
        from fer_core.data.datasets import load_dataset
        warnings.simplefilter("always", DeprecationWarning)
        with warnings.catch_warnings(record=True) as seen:
            import fer_core.rows as old_rows
            from fer_core.defaults import EPOCHS
            from fer_core.data import load_dataset as old_load      # fer_core.data was the datasets module
            from fer_core.faces import detect_faces
            from fer_core.inference import compiled_forward         # fer_core.inference was the forward passes
            assert fer_core.seeds is __import__("fer_core.store.seeds").store.seeds   # attribute of the package
        assert old_rows is rows and old_load is load_dataset and EPOCHS > 0
        import fer_core.faces.detect, fer_core.compute.forward
        assert detect_faces is fer_core.faces.detect.detect_faces
        assert compiled_forward is fer_core.compute.forward.compiled_forward
        messages = [str(w.message) for w in seen if w.category is DeprecationWarning]
        assert [w.filename for w in seen] == [__file__] * len(seen), [w.filename for w in seen]
        assert messages == [
            "fer_core.rows moved to fer_core.inference.rows in fer_core 0.10; the old path goes in 0.11",
            "fer_core.defaults moved to fer_core.data.defaults in fer_core 0.10; the old path goes in 0.11",
            "fer_core.data.load_dataset moved to fer_core.data.datasets.load_dataset in fer_core 0.10; the old path goes in 0.11",
            "fer_core.faces.detect_faces moved to fer_core.faces.detect.detect_faces in fer_core 0.10; the old path goes in 0.11",
            "fer_core.inference.compiled_forward moved to fer_core.compute.forward.compiled_forward in fer_core 0.10; the old path goes in 0.11",
            "fer_core.seeds moved to fer_core.store.seeds in fer_core 0.10; the old path goes in 0.11",
        ], messages
        from fer_core.data import images                             # a room's own module is never forwarded
        assert images.__name__ == "fer_core.data.images"
        old_rows.face_row = "patched"                                # the same object: every caller sees it
        assert fer_core.inference.rows.face_row == "patched"
        try:
            import fer_core.no_such_module  # noqa: F401
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("an unknown name imported")
        print("ok")
    """
    code = code.replace("__file__", repr("<string>"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
