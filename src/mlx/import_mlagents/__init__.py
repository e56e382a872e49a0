"""`python -m mlx.import_mlagents <config.yaml>`: an ML-Agents trainer config as an mlx experiment.

ML-Agents users bring config files; this turns one into `conf/experiment/<name>.yaml`, selected with
`python -m mlx experiment=<name>`. It reads every format ML-Agents has used:

- the current nested format (`behaviors`, `default_settings`, `environment_parameters`, `env_settings`,
  `engine_settings`, `checkpoint_settings`, `torch_settings`, `debug`), also a run's `configuration.yaml`;
- the 0.17-0.18 format (`behaviors` plus top-level `curriculum` and `parameter_randomization`);
- the old flat format (<= 0.16: a `default` section and one section of flat keys per behaviour, with the
  curriculum and sampler in separate files, given here as `--curriculum` and `--sampler`).

Keys are checked as strictly as ML-Agents checks them (an unknown key is an error naming its dotted path),
values are coerced as ML-Agents coerces them (`max_steps: 5.0e5` is a number). Every setting with an mlx
counterpart is written; every trainer setting is written out with ML-Agents' defaults filled in, so the
experiment alone decides the trainer tree whatever `tuned/` holds. A setting mlx cannot apply is never
dropped silently: it is printed on stderr with its dotted path and listed at the top of the file. The
generated file is composed with Hydra and checked with `mlx.config.validate` before anything is written.

Exit codes: 0 imported (warnings may have been printed); 1 with `--strict` when something could not be
mapped (nothing written); 2 bad input (unreadable file, YAML syntax error, unknown key, wrong type,
unknown trainer type, a result mlx refuses), with one line on stderr.

Modules: reading (YAML and ML-Agents' value coercion), schema (ML-Agents' keys: mlx.config's dataclasses
plus what only ML-Agents has), legacy (older formats -> the nested one), translate (-> experiments), cli.
"""

from mlx.import_mlagents.cli import main
from mlx.import_mlagents.legacy import convert_old_curriculum, load_curriculum_option

__all__ = ["convert_old_curriculum", "load_curriculum_option", "main"]
