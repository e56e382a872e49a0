"""`python -m mlx.import_mlagents <config.yaml>`: see the package docstring."""

import sys

from mlx.import_mlagents.cli import main

sys.exit(main())
