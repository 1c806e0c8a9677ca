"""Shared fixtures. Nothing here touches the network.

``tiny_runs`` trains all five models once per test session on a tiny demo set
(8 classes × 6 images, 75 px, 1 epoch, ``--weights none``) through the real
CLI, so app and store tests read genuine run folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
SHARED_FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TINY_ARGS = ["--data", "demo", "--demo-per-class", "6", "--demo-size", "64", "--image-size", "75",
             "--epochs", "1", "--weights", "none", "--batch-size", "16"]


@pytest.fixture(autouse=True, scope="session")
def _isolated_caches(tmp_path_factory):
    """Feature cache, Keras home and the training-job registry point at temporary folders for the whole session."""
    os.environ["FER_CACHE_DIR"] = str(tmp_path_factory.mktemp("feature-cache"))
    # One training job per server (fer_core.fit.jobs): each test session gets its own registry, so two
    # test runs (or a test run and a real app) on one machine never refuse each other's jobs.
    os.environ["FER_JOBS_DIR"] = str(tmp_path_factory.mktemp("server-jobs"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    yield


def run_cli(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m training`` as a user would; returns the completed process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture(scope="session")
def tiny_runs_dir(tmp_path_factory, worker_id) -> Path:
    """A runs folder holding one complete run of each of the five models (tiny demo data).

    Built once per test run, not once per xdist worker (after pytest-xdist's
    "making session-scoped fixtures execute only once"): the first worker to
    get the lock trains the five models (≈ 1 min on 2 cores), the others read
    the same folder. Tests that damage runs take ``tiny_runs_copy``.
    """
    if worker_id == "master":  # not distributed: this session's own folder
        root = tmp_path_factory.getbasetemp()
    else:  # the folder all workers of this run share (…/pytest-N/, beside popen-gw0, popen-gw1)
        root = tmp_path_factory.getbasetemp().parent
    out = root / "tiny-runs"
    with FileLock(str(root / "tiny-runs.lock")):
        if not (root / "tiny-runs.complete").is_file():
            shutil.rmtree(out, ignore_errors=True)  # a worker that failed half-way
            proc = run_cli(*TINY_ARGS, "--models", "all", "--out", str(out))
            assert proc.returncode == 0, proc.stderr[-3000:]
            (root / "tiny-runs.complete").touch()
    return out


@pytest.fixture
def tiny_runs_copy(tiny_runs_dir, tmp_path) -> Path:
    """A private copy of ``tiny_runs_dir`` a test may damage."""
    dst = tmp_path / "runs"
    shutil.copytree(tiny_runs_dir, dst)
    return dst


@pytest.fixture(scope="session")
def fer2013_path() -> Path:
    if not SHARED_FER2013.is_file():
        pytest.skip(f"FER2013 not available at {SHARED_FER2013} (shared data folder absent)")
    return SHARED_FER2013


#: Test files left out of the fast path (``python -m pytest -m "not slow"``): each trains models, runs
#: Ray, starts a server or a browser, or reads all of FER2013; together they are most of the suite's
#: time (``--durations`` of a full run: 10–70 s per test). The default run keeps every one of them.
SLOW_FILES = frozenset({
    "test_benchmarks.py", "test_fer2013_benchmark.py", "test_ray_engine.py", "test_precision.py",
    "test_jobs.py", "test_train_cli.py", "test_ensemble.py", "test_ensemble_select.py",
    "test_load_benchmark.py", "test_upload_bounds.py", "test_browser.py", "test_live_browser.py",
    "test_export.py", "test_app_train.py", "test_init_from_compact.py", "test_ferplus.py",
    "test_training_crops.py", "test_bundled_scores.py",
})


#: The longest files, longest first (``--durations=0`` of a full run, 2026-12-08). pytest-xdist hands out
#: whole files in collection order (``--dist loadfile --no-loadscope-reorder`` in pyproject.toml), so
#: starting with these keeps a one-test file of 75 s from starting last and running alone at the end.
LONGEST_FIRST = (
    "test_ray_engine.py", "test_train_cli.py", "test_bundled_scores.py", "test_benchmarks.py",
    "test_browser.py", "test_precision.py", "test_fer2013_benchmark.py", "test_ensemble.py",
    "test_init_from_compact.py", "test_app_predict.py", "test_jobs.py", "test_export.py", "test_predict.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files and tests keep their order
