"""Regenerate the Python code of mlx's wire protocol from its .proto files.

    .venv/bin/python scripts/gen_protos.py          # rewrites src/mlx/envs/unity/communicator_objects/*_pb2*.py(i)

Needs grpcio-tools (in the dev extra). The generated files are committed, so installing mlx never needs
protoc; tests/test_protocol.py checks that the committed files equal a fresh generation.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = Path("mlx/envs/unity/communicator_objects")
# Only this file declares a service, so only it gets a *_pb2_grpc.py module.
SERVICE_FILES = ("messages.proto",)


def proto_files() -> list[Path]:
    return sorted((SRC / PACKAGE).glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) on every .proto into out_dir; return the files written."""
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")  # google/protobuf/*.proto
    out_dir.mkdir(parents=True, exist_ok=True)
    messages = [str(PACKAGE / p.name) for p in proto_files()]
    services = [str(PACKAGE / name) for name in SERVICE_FILES]
    for args in (
        ["--python_out", str(out_dir), "--pyi_out", str(out_dir), *messages],
        ["--grpc_python_out", str(out_dir), *services],
    ):
        code = protoc.main(["grpc_tools.protoc", f"-I{SRC}", f"-I{include}", *args])
        if code != 0:
            raise RuntimeError(f"protoc failed (exit {code}) on {args}")
    return sorted(p for p in (out_dir / PACKAGE).iterdir() if p.suffix in (".py", ".pyi"))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            target = SRC / PACKAGE / path.name
            target.write_bytes(path.read_bytes())
            print(f"wrote {target.relative_to(SRC.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
