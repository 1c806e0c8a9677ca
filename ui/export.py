"""The Compare page's export control: a run's model in another format, as a zip of the model and its labels.json.

Converting costs the server CPU and memory (measured in benchmarks/results/export.json:
seconds per format for the bundled models, and ONNX conversion briefly holds a
second copy of the graph), so:

- each (run, format) is converted once per server and kept as a zip on disk
  (:func:`fer_core.store.export.export_zip`); every later visitor downloads that file, and a
  download never converts anything;
- one conversion at a time per server (fer_core.store.export's lock), so two visitors
  never hold two graph copies at once;
- on a public URL (not :func:`ui.access.trusted`) export is off: one line says so and gives
  the command for the visitor's own machine (:func:`export_section`). A conversion takes
  seconds to minutes of CPU and up to +1 GB of memory, far over what one visitor may cost
  (issue 28: ≤ 20 CPU-s for the worst clip). :func:`offered` keeps the narrower rules
  (``trusted=False``): only the float formats, and only for models up to :data:`PUBLIC_MAX_BYTES`: int8 also draws, calibrates on and checks
  hundreds of faces, and an ImageNet transfer model (80–220 MB) would take minutes
  and much of a Community Cloud app's 2.7 GB. Those are one command on the visitor's
  own machine (the page shows it). ONNX of an ensemble is left out there too (≈ 1 GB
  of memory for the bundled compact_x2_blur, two networks).

Formats whose packages are missing here are not offered; the caption says which and why.
"""

from __future__ import annotations

import json
import shlex
import zipfile
from pathlib import Path

import streamlit as st

from fer_core import FERError, Run
from fer_core.store.export import FORMATS, available_formats, cached_zip, export_zip, missing_packages

from . import access, state, tables

#: Formats a public deployment converts: no calibration, one conversion each.
PUBLIC_FORMATS = ("keras", "saved_model", "tflite", "onnx")
#: Largest model a public deployment converts (the bundled compact is 4.8 MB; VGG19 80 MB).
PUBLIC_MAX_BYTES = 25_000_000
#: Peak memory one ONNX conversion of the bundled compact_x2_blur (two compact networks) added to a fresh
#: process (benchmarks/export.py, 2026-11-26 12:02): tf2onnx on an ensemble's nested graphs, 2.7× compact's
#: +371 MB (three networks, compact_x3: +1,268 MB); next to the ≈ 1 GB a public server holds under load that
#: is too close to Community Cloud's 2.7 GB, so public mode leaves it out.
ENSEMBLE_ONNX_PEAK_MB = 1005
KEY = state.COMPARE_DOWNLOAD_PREFIX + "export_"  # + what + run id: export widgets are downloads of Compare


def model_bytes(run: Run) -> int:
    """Bytes of the full model a conversion handles (a head-only run is rebuilt with its backbone)."""
    m = run.metrics
    if run.head_only:
        return int(m.get("full_model_bytes") or (m.get("model_size_bytes") or 0) + (m.get("backbone_bytes") or 0))
    return int(m.get("model_size_bytes") or (run.model_path.stat().st_size if run.model_path.is_file() else 0))


def offered(run: Run, *, trusted: bool) -> tuple[list[str], str | None]:
    """Formats this visitor may export ``run`` as, and a one-line note on what is left out and why."""
    reasons = available_formats()
    formats = [f for f, why in reasons.items() if why is None]
    notes = []
    missing = [f for f, why in reasons.items() if why is not None]
    if missing:
        notes.append(f"{', '.join(missing)}: not installed on this server ({_packages(missing)}; "
                     "pip install -r requirements-export.txt)")
    if not trusted:
        if model_bytes(run) > PUBLIC_MAX_BYTES:
            formats = []
            notes.append(f"a {model_bytes(run) / 1e6:.0f} MB model is too large to convert on this shared server")
        else:
            if "tflite_int8" in formats:
                formats = [f for f in formats if f in PUBLIC_FORMATS]
                notes.append("tflite_int8 is not converted on this shared server (it calibrates on and checks "
                             "hundreds of faces)")
            if run.ensemble_members and "onnx" in formats:
                formats = [f for f in formats if f != "onnx"]
                notes.append(f"onnx of an ensemble is not converted on this shared server (the bundled two-network "
                             f"one took +{ENSEMBLE_ONNX_PEAK_MB:,} MB of memory)")
    return formats, "; ".join(notes) or None


def _packages(formats: list[str]) -> str:
    return ", ".join(sorted({p for f in formats for p in missing_packages(f)}))


def local_command(run: Run, fmt: str = "tflite_int8") -> str:
    """The command that exports ``run`` on one's own machine (the run folder as the repository names it)."""
    path = f"models/{run.id}" if run.bundled else f"runs/{run.id}"
    return f"python -m training.export {shlex.quote(path)} --format {fmt} --out exports/{run.id}-{fmt}"


def check_summary(zip_path: Path) -> str:
    """How the export in ``zip_path`` was checked, in one line (read from its labels.json)."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            name = next(n for n in zf.namelist() if n.endswith("/labels.json"))
            labels = json.loads(zf.read(name))
    except (OSError, StopIteration, ValueError, zipfile.BadZipFile):
        return ""
    check, runtime = labels.get("check", {}), labels.get("check", {}).get("runtime", "").split(" (")[0]
    if "top1_agreement" in check:
        line = (f"{labels['quantization']['mode']} int8 · agrees with the Keras model on "
                f"{check['top1_agreement']:.1%} of {check['faces']} faces in {runtime}")
        if "accuracy" in check:
            line += f" · accuracy {check['accuracy']['int8']:.1%} (Keras {check['accuracy']['keras']:.1%})"
        return line
    return f"checked in {runtime}: max |Δp| {check.get('max_abs_diff', 0):.1e} against the Keras model"


def export_control(run: Run) -> None:
    """One run's row: format menu, then Export (converts once) or the zip's download button."""
    trusted = access.trusted()
    formats, note = offered(run, trusted=trusted)
    c1, c2, c3 = st.columns([2, 1.3, 1.7], vertical_alignment="center")
    c1.markdown(f"**{run.model_name}**{tables.model_label(run)[len(run.model_name):]}")
    if not formats:
        c2.caption(note or "no export format is available here")
        c3.code(local_command(run, "tflite"), language="bash")
        return
    fmt = c2.selectbox("Format", formats, key=f"{KEY}format_{run.id}", format_func=lambda f: FORMATS[f].title,
                       label_visibility="collapsed")
    zip_path = cached_zip(run, fmt)
    if zip_path is None and c3.button("Export", key=f"{KEY}go_{run.id}", icon=":material/deployed_code:",
                                      help=f"Convert to {fmt}, reload it in its own runtime and compare with the "
                                           "Keras model; then download a zip of the model and labels.json"):
        with st.spinner(f"Exporting {run.model_name} as {fmt} and checking it…"):
            try:
                zip_path = export_zip(run, fmt)
            except FERError as exc:
                st.error(str(exc), icon=":material/error:")
            except Exception as exc:  # noqa: BLE001 - a converter bug must not put a traceback on the page
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                st.error(f"{fmt}: export failed ({first})", icon=":material/error:")
    if zip_path is not None:
        c3.download_button(f"{run.id}_{fmt}.zip · {zip_path.stat().st_size / 1e6:.1f} MB", data=zip_path.read_bytes,
                           file_name=f"{run.id}_{fmt}.zip", mime="application/zip", key=f"{KEY}zip_{fmt}_{run.id}",
                           icon=":material/download:", on_click="ignore")
        st.caption(check_summary(zip_path))
    if note:
        st.caption(note + ("" if trusted else f" · on your own machine: `{local_command(run)}`"))


#: What a public deployment shows instead of the export controls (one line).
PUBLIC_OFF = ("Export is off on this public server (converting a model costs minutes of CPU and up to 1 GB of "
              "memory); on your own machine: `{command}`")


def export_section(runs: list[Run]) -> None:
    """The Downloads tab's export block: what an export holds, then one control per run (one line in public mode)."""
    if not access.trusted():
        st.info(PUBLIC_OFF.format(command=local_command(runs[0], "tflite") if runs else "python -m training.export"),
                icon=":material/deployed_code:")
        return
    st.markdown("**Export** — take a model away: the model in the chosen format plus `labels.json` (class names in "
                "output order, input size, channels, value range) and a README with ten lines of Python that run it. "
                "Every export is reloaded in its own runtime and compared with the Keras model before it is offered.")
    for run in runs:
        export_control(run)
