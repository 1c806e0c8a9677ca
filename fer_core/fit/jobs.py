"""Training jobs: ``python -m training`` started as its own process, followed through files.

The app never trains inside a Streamlit script run (a widget change would cut
it off). :func:`start_job` launches the CLI with ``--progress-file`` and
returns at once; everything about the job lives on disk, so any session — a
rerun, another page, a reloaded browser, a second user — can find it again
with :func:`latest_job` and read it with :meth:`Job.state`::

    <runs>/.jobs/<job_id>/job.json        pid, arguments, start time, cancel request
    <runs>/.jobs/<job_id>/progress.jsonl  the CLI's progress events (fer_core.fit.progress)
    <runs>/.jobs/<job_id>/stderr.log      the CLI's stderr (console progress, errors)
    <runs>/.jobs/<job_id>/stdout.log      the CLI's stdout

The ``.jobs`` folder starts with a dot, so the run store never mistakes it for
a run. Two jobs never train into one runs folder: :func:`start_job` refuses
while a job's process is alive or the folder's :class:`~fer_core.store.runs.TrainLock`
is held (also by a CLI started from a shell).

One training job per server, too: a lab machine shared by several people (or
several app instances with different runs folders) would otherwise run
trainers side by side, each slowed to a crawl. :func:`start_job` takes an
exclusive ``flock`` on ``<server jobs dir>/train.lock`` and hands that open
file to the trainer (``pass_fds``), so the lock lives exactly as long as the
trainer process — a killed trainer never leaves a stale lock — and records the
job in ``current.json`` next to it, so every visitor can see who is training
and since when (:func:`server_job`, :attr:`Job.started_by`)::

    $FER_JOBS_DIR (default ~/.cache/fer-studio/jobs)/train.lock     held by the running trainer
    $FER_JOBS_DIR/current.json                                      its job folder, pid, start, started_by

Set ``FER_JOBS_DIR`` to a folder every user can write (e.g. ``/var/tmp/fer-studio``)
to make it one job per machine across Unix users; the default is per user.
A CLI started from a shell holds only its runs folder's lock.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import FERError
from .progress import read_events
from ..store.runs import is_locked, lock_held

JOBS_DIR = ".jobs"
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
SERVER_LOCK = "train.lock"
SERVER_CURRENT = "current.json"
#: The trainer's command line before its arguments (tests swap in a stand-in that just sleeps).
TRAINER = [sys.executable, "-m", "training"]
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

# Children started by this process: polled so a finished child is reaped (no zombie
# that would still look alive to os.kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen] = {}


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None off Linux.

    Stored in job.json so a pid reused by an unrelated process after the
    trainer ended is not mistaken for the trainer (and never signalled).
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int | None, start_time: str | None = None) -> bool:
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    if start_time is not None and _proc_start_time(pid) not in (None, start_time):
        return False  # the pid now belongs to another process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class Job:
    """One training job folder; every method reads the disk afresh.

    ``id``, ``dir``, ``pid``, ``args`` and ``created`` come from the folder and
    its job.json, so a Job rebuilt by another session is the same job.
    """

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def dir(self) -> Path:
        return self.path

    @property
    def pid(self) -> int | None:
        return self.info.get("pid")

    @property
    def args(self) -> list[str]:
        return list(self.info.get("args", []))

    @property
    def created(self) -> float:
        return float(self.info.get("started", 0.0))

    @property
    def started_by(self) -> str | None:
        """Who started the job (an e-mail, a client address, a session label, a Unix user), if recorded."""
        return self.info.get("started_by")

    @property
    def info(self) -> dict:
        try:
            return json.loads((self.path / "job.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def progress_file(self) -> Path:
        return self.path / "progress.jsonl"

    @property
    def log_file(self) -> Path:
        """The CLI's stderr: console progress lines and, on failure, the error."""
        return self.path / "stderr.log"

    def events(self) -> list[dict]:
        """Progress events written so far (see :mod:`fer_core.fit.progress` for the format)."""
        return read_events(self.progress_file)

    def is_alive(self) -> bool:
        """True while the trainer process itself runs (whatever its events say)."""
        info = self.info
        return _pid_alive(info.get("pid"), info.get("pid_start"))

    def is_running(self) -> bool:
        return self.state()["status"] == "running"

    def state(self) -> dict:
        """Where the job is: status, current model and epoch, per-model history, finished models.

        ``status`` is ``running``, ``ok``, ``failed`` or ``cancelled``; ``message``
        is one line (the latest status while running, the reason when it failed).
        """
        info = self.info
        events = self.events()
        s = {"status": "running", "message": "starting…", "current_model": None, "model_index": 0,
             "total": len(info.get("models") or []) or 1, "epoch": 0, "epochs": 0, "history": {},
             "finished_models": [], "job_id": self.id, "started": info.get("started"), "args": info.get("args", []),
             "started_by": info.get("started_by")}
        end = None
        several: set[str] = set()  # models trained with several seeds in this job: named "model · seed S"
        seed = None

        def label(model, seed_):
            return f"{model} · seed {seed_}" if model in several and seed_ is not None else model

        for e in events:
            kind = e.get("event")
            if kind == "run_start":
                s["total"] = len(e.get("models") or []) or s["total"]
                s["dataset"] = (e.get("dataset") or {}).get("name")
                models = e.get("models") or []
                several = {m for m in models if models.count(m) > 1}
            elif kind == "model_start":
                seed = e.get("seed")
                s.update(current_model=e.get("model"), current_label=label(e.get("model"), seed),
                         model_index=int(e.get("index", 0)),
                         total=int(e.get("total", s["total"])), epoch=0, epochs=int(e.get("epochs", 0)))
                s["history"].setdefault(s["current_label"], {m: [] for m in METRICS})
            elif kind == "status":
                s["message"] = e.get("message", s["message"])
            elif kind == "epoch_end":
                model = label(e.get("model"), e.get("seed", seed))
                h = s["history"].setdefault(model, {m: [] for m in METRICS})
                for m in METRICS:
                    h[m].append((e.get("logs") or {}).get(m))
                s.update(epoch=int(e.get("epoch", 0)), epochs=int(e.get("epochs", s["epochs"])))
                logs = e.get("logs") or {}
                parts = [f"{'fine-tuning ' if e.get('stage') == 2 else ''}epoch {s['epoch']}/{s['epochs']}"]
                parts += [f"{label} {logs[m]:.3f}" for m, label in (("loss", "loss"), ("val_loss", "val loss")) if m in logs]
                parts += [f"{label} {100 * logs[m]:.1f}%" for m, label in (("accuracy", "accuracy"),
                                                                          ("val_accuracy", "val accuracy")) if m in logs]
                s["message"] = " · ".join(parts)
            elif kind == "model_end":
                done = {k: e.get(k) for k in ("model", "accuracy", "macro_f1", "seconds", "run_dir")}
                s["finished_models"].append(dict(done, label=label(e.get("model"), e.get("seed", seed))))
            elif kind == "run_end":
                end = e
        if end is not None:
            s["status"] = end.get("status", "failed")
            s["message"] = end.get("message", "")
        elif not _pid_alive(info.get("pid"), info.get("pid_start")):
            if info.get("cancel_requested"):
                s.update(status="cancelled", message="cancelled before training started")
            else:
                s.update(status="failed", message=self._exit_reason())
        return s

    def _exit_reason(self) -> str:
        """One line for a process that died without saying why (killed, crashed)."""
        code = None
        child = _CHILDREN.get(self.info.get("pid"))
        if child is not None:
            code = child.poll()
        try:
            lines = [ln.strip() for ln in self.log_file.read_text(errors="replace").splitlines()
                     if ln.strip() and not _is_runtime_noise(ln)]
        except OSError:
            lines = []
        last = next((ln for ln in reversed(lines) if ln.lower().startswith("error")), lines[-1] if lines else "")
        reason = f"the training process stopped unexpectedly{f' (exit code {code})' if code is not None else ''}"
        return f"{reason}: {last[:300]}" if last else reason

    def cancel(self) -> None:
        """Ask the trainer to stop (SIGTERM): it removes its half-written run and reports ``cancelled``."""
        info = self.info
        if not info:
            raise FERError(f"job {self.id}: job.json is missing; cannot cancel")
        info["cancel_requested"] = True
        _write_json(self.path / "job.json", info)
        pid = info.get("pid")
        if _pid_alive(pid, info.get("pid_start")):
            try:
                # The trainer leads its own session (start_new_session): signal the whole
                # group, so helper processes it may have started stop too.
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGTERM)
                else:
                    os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


#: Native TensorFlow/absl start-up lines on stderr (CUDA probing, oneDNN notes): not a reason.
_NOISE_PREFIXES = ("WARNING: All log messages before absl", "To enable the following instructions")


def _is_runtime_noise(line: str) -> bool:
    line = line.strip()
    if line.startswith(_NOISE_PREFIXES):
        return True
    # absl format: I0000 00:00:1795462476.763271    4826 port.cc:153] ...
    return len(line) > 6 and line[0] in "IWEF" and line[1:5].isdigit() and line[5] == " " and "] " in line


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def list_jobs(runs_dir: str | Path) -> list[Job]:
    """Every job of ``runs_dir``, oldest first."""
    root = Path(runs_dir) / JOBS_DIR
    if not root.is_dir():
        return []
    jobs = [Job(p) for p in root.iterdir() if p.is_dir() and (p / "job.json").is_file()]
    return sorted(jobs, key=lambda j: (j.info.get("started", 0), j.id))


def latest_job(runs_dir: str | Path) -> Job | None:
    """The newest job of ``runs_dir`` (running or finished), or None."""
    jobs = list_jobs(runs_dir)
    return jobs[-1] if jobs else None


def _models_of(args: list[str]) -> list[str]:
    for flag, value in zip(args, args[1:]):
        if flag == "--models":
            if value.strip().lower() == "all":
                return []
            return [m.strip() for m in value.split(",") if m.strip()]
    return []


def server_jobs_dir() -> Path:
    """Where the one-job-per-server lock and record live: ``$FER_JOBS_DIR`` or ``~/.cache/fer-studio/jobs``."""
    env = os.environ.get("FER_JOBS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fer-studio" / "jobs"


def server_job(jobs_dir: str | Path | None = None) -> Job | None:
    """The job training on this server right now (into any runs folder), or None.

    Alive means: its trainer still holds the server lock. The Job is read from
    the job folder ``current.json`` points at; when that folder is gone, a Job
    over the registry itself still tells ``started_by`` and the start time.
    """
    root = Path(jobs_dir) if jobs_dir is not None else server_jobs_dir()
    if not lock_held(root / SERVER_LOCK):
        return None
    try:
        record = json.loads((root / SERVER_CURRENT).read_text())
        job_dir = Path(record["job_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # lock taken a moment ago, record not written yet
    return Job(job_dir) if (job_dir / "job.json").is_file() else None


def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M", time.localtime(ts)) if ts else "?"


def describe_start(job: Job, now: float | None = None) -> str:
    """'started by X at HH:MM (N min ago)' — one line, server time."""
    started = job.created or None
    who = job.started_by or "someone"
    ago = ""
    if started:
        minutes = max(0, int(((now or time.time()) - started) // 60))
        ago = " (just now)" if minutes == 0 else f" ({minutes} min ago)"
    return f"started by {who} at {_clock(started)}{ago}"


def _take_server_lock(fd: int, server: Path, grace: float = 15.0) -> bool:
    """Lock the server for a new trainer; False while another job trains.

    A job that has already reported its end (``run_end``) but whose process
    is still exiting holds the lock for a moment more: wait up to ``grace``
    seconds for it instead of refusing a start right after a finished run.
    """
    deadline = time.time() + grace
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            other = server_job(server)
            if other is None or time.time() > deadline:
                return False
            try:
                finishing = other.state()["status"] != "running"
            except (OSError, ValueError):
                finishing = False
            if not finishing:
                return False
            time.sleep(0.2)


def _default_started_by() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "a local user"


def start_job(cli_args: list[str], runs_dir: str | Path, *, started_by: str | None = None,
              jobs_dir: str | Path | None = None) -> Job:
    """Start ``python -m training <cli_args> --out runs_dir --progress-file …`` in the background.

    Raises :class:`FERError` when a job is already training into ``runs_dir``,
    or anywhere on this server (see the module docstring; ``jobs_dir`` defaults
    to :func:`server_jobs_dir`). ``started_by`` is recorded in job.json for
    other visitors (default: the Unix user). ``cli_args`` must not contain
    ``--out`` or ``--progress-file``.
    """
    runs_dir = Path(runs_dir).resolve()
    for flag in ("--out", "--progress-file"):
        if flag in cli_args:
            raise FERError(f"start_job sets {flag} itself; remove it from the arguments")
    server = Path(jobs_dir) if jobs_dir is not None else server_jobs_dir()
    try:
        server.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FERError(f"cannot create the training-job registry {server} ({exc.strerror or exc}); "
                       "set FER_JOBS_DIR to a writable folder") from None
    root = runs_dir / JOBS_DIR
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one check-and-start at a time
        running = [j for j in list_jobs(runs_dir) if j.is_alive() and j.state()["status"] == "running"]
        if running or is_locked(runs_dir):
            who = f"job {running[-1].id}" if running else "another training process"
            raise FERError(f"{runs_dir}: {who} is already training into this folder; wait for it or cancel it")
        server_fd = os.open(server / SERVER_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not _take_server_lock(server_fd, server):
                other = server_job(server)
                what = f"job {other.id} ({describe_start(other)})" if other else "another job"
                raise FERError(f"{what} is already training on this server; one training job runs at a time — "
                               "wait for it or cancel it") from None
            job_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid() % 10000:04d}"
            path = root / job_id
            k = 1
            while path.exists():
                k += 1
                path = root / f"{job_id}-{k}"
            path.mkdir()
            job = Job(path)
            argv = [*cli_args, "--out", str(runs_dir), "--progress-file", str(job.progress_file)]
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "CI": os.environ.get("CI", "true")}
            started_by = (started_by or "").strip() or _default_started_by()
            with open(path / "stdout.log", "w") as out, open(job.log_file, "w") as err:
                # pass_fds: the trainer inherits the locked server_fd, so the server lock is held
                # exactly as long as the trainer runs, whatever happens to this app process.
                proc = subprocess.Popen([*TRAINER, *argv], cwd=PROJECT_ROOT, env=env,
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(server_fd,),
                                        start_new_session=True)  # survives the app; own process group
            _CHILDREN[proc.pid] = proc
            record = {"pid": proc.pid, "pid_start": _proc_start_time(proc.pid), "started": time.time(),
                      "started_by": started_by}
            _write_json(path / "job.json", {**record, "args": list(cli_args), "runs_dir": str(runs_dir),
                                            "models": _models_of(list(cli_args)),
                                            "command": "python -m training " + shlex.join(argv)})
            _write_json(server / SERVER_CURRENT, {**record, "job_dir": str(path), "runs_dir": str(runs_dir)})
        finally:
            os.close(server_fd)  # the trainer keeps its own copy (and the lock) until it exits
    return job
