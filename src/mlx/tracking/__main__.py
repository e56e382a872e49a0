"""`python -m mlx.tracking sync results/<run_id>`: see mlx.tracking.sync."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = "usage: python -m mlx.tracking sync <run folder> [--tracking-uri URI] [--wait SECONDS]"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] != "sync":
        print(f"mlx.tracking: error: unknown command '{args[0]}'; {USAGE}", file=sys.stderr)
        return 2
    from mlx.tracking.sync import main as sync_main  # lazy for start-up speed (mlflow, yaml)

    return sync_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
