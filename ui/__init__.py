"""FER Studio's Streamlit layer: shared helpers for ``app.py`` and ``pages/``.

Pages stay thin: they lay out widgets and call into these modules, which call
:mod:`fer_core`. Nothing here trains or runs TensorFlow itself.

- :mod:`ui.settings`  where runs and data live (environment variables)
- :mod:`ui.state`     every session-state and widget key, in one place
- :mod:`ui.loaders`   cached readers: run listings, datasets, predictors
- :mod:`ui.tables`    pure pandas builders (leaderboard, coverage)
- :mod:`ui.charts`    pure plotly figure builders (runs → figures)
- :mod:`ui.samples`   sample "photos" drawn from the demo faces
- :mod:`ui.widgets`   small shared page pieces (dataset picker, warnings)
- :mod:`ui.inference` the Predict page's call into the Predictor, result kept per photo
- :mod:`ui.training`  the Train page's CLI arguments, uploads and job following
- :mod:`ui.bootstrap` routes a page that Streamlit ran directly back through ``app.py``

Environment: ``FER_RUNS_DIR`` (default ``runs/``), ``FER_DATA_DIR`` (default
``data/``), ``FER_PREWARM=0`` to stop loading the models in the background as
soon as the app opens.
"""
