"""`mlx-learn`: a drop-in for ML-Agents' `mlagents-learn` (same command line, same YAML) running mlx.

    mlx-learn config/ppo/3DBall.yaml --run-id=first

reads the trainer config as is through mlx.import_mlagents, maps mlagents-learn's options to mlx overrides,
prints the equivalent `python -m mlx` command and runs it in this process (same results layout, same
refusals). Without --env a native port is picked from the behaviour names, else it waits for the Unity Editor.
`--mlx KEY=VALUE` passes any mlx override (e.g. --mlx trainer.max_steps=2000). Modules: options (the
parser), run (experiment and overrides), cli (main, the entry point: mlx.learn.cli:main). This package
imports nothing, so that python -m mlx can read the option names without an import cycle.
"""
