"""FER Studio speed benchmark: training, prediction, memory and the levers that move them.

    python benchmarks/speed.py            # full   → benchmarks/results/speed.json
    python benchmarks/speed.py --quick    # < 3 min → benchmarks/results/speed_quick.json
    python benchmarks/speed.py --smoke    # seconds, for tests → benchmarks/results/speed_smoke.json
    python benchmarks/speed.py --skip train_all_five,levers --out /tmp/s.json

``benchmarks/speed.py`` is the entry point; the code lives here, one module per
section (each module's docstring says what it measures and why that way):

1. ``feature_cache``: frozen-backbone training, plain ``model.fit`` against the
   feature cache (``feature_cache.py``).
2. ``prediction``: ``Predictor(runs).predict(jpeg bytes)`` in a fresh process,
   warm and cold (``prediction.py``; the photos come from ``inputs.py``).
3. ``train_all_five``: ``python -m training`` as a user runs it (``train_all_five.py``).
4. ``efficiency``: each model's forward GFLOP/s against this CPU's float32
   matrix-multiply rate (``matmul.py``; filed from the prediction process).
5. ``memory``: resident memory of the prediction process (``prediction.py``).
6. ``precision``: float32 against mixed bfloat16 (``precision.py``).
7. ``levers``: ``model_levers.py`` (in the prediction process),
   ``runtime_levers.py`` (one fresh process per setting), ``tfdata_levers.py``.

Shared pieces: ``common.py`` (constants, timing, statistics, agreement, CPU
meter, machine info, JSON, worker processes), ``forward.py`` (timing a model's
forward pass), ``modes.py`` (full / quick / smoke sizes, targets) and
``cli.py`` (arguments, the run, the JSON and the printed table).

Ratios are always measured side by side in one run. Absolute times move with
the machine and its load: the JSON records the CPU, and how busy the machine
was with other work during each section (``cpu.others_busy_fraction``).
"""
