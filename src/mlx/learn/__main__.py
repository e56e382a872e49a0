"""`python -m mlx.learn`: the same as `mlx-learn`."""

import sys

from mlx.learn.cli import main

sys.exit(main())
