"""The pose active-learning experiment (``eglpp run``): runs × strategies × cycles.

- :mod:`~eglpp.experiment.config`: ``ExperimentConfig`` and the presets;
- :mod:`~eglpp.experiment.data`: pool, test and base sets built from the config;
- :mod:`~eglpp.experiment.loop`: the loop (``run_experiment``), resumable;
- :mod:`~eglpp.experiment.pool`: one cycle's pool inputs;
- :mod:`~eglpp.experiment.rundir`: the run directory (``RunPaths`` names every file);
- :mod:`~eglpp.experiment.ranks`: ``run_ranks``, the tasks spread over torchrun's ranks;
- :mod:`~eglpp.experiment.timing`: where the time went;
- :mod:`~eglpp.experiment.auxiliary`: the Learning Loss head's fit on the base model.
"""
