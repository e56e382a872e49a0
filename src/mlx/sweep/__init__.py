"""Sweeps: grids and Optuna searches over any config key, run by mlx's Hydra sweeper.

    python -m mlx -m seed=1,2,3 trainer.hyperparameters.learning_rate=1e-4,3e-4   # a grid
    python -m mlx -m sweep=3dball_ppo                                             # an Optuna search

settings.py  the `sweep:` node of sweeps/<name>.yaml, checked (search space, sampler, pruner, storage)
files.py     sweeps/*.yaml as the options of the `sweep` config group
objective.py a trial's value from its summaries; the run hook that reports it and stops pruned trials
study.py     Optuna storage, study, sampler, pruner; workers, heartbeats, retries of killed trials
search.py    the Optuna loop (ask, launch through Hydra, tell) and the best trial's reusable config
grid.py      grids: Hydra's basic sweeper plus one MLflow parent run
tracking.py  the sweep's MLflow parent run and its children's final tags
jobs.py      what a job of a multirun knows: its overrides and its MLflow tags
The Hydra plugin itself is src/hydra_plugins/mlx_sweeper (Hydra finds plugins only in that package).
"""
