"""Generate the Python modules in `openfl_cli/proto/` from the `.proto` sources beside this file.

Run from the repository root:  python proto/generate.py
(needs the `dev` extra: grpcio-tools). `tests/test_proto_generated.py` fails when the committed
modules differ from what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
SOURCES = sorted((PROTO_ROOT / "openfl_cli" / "proto").glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every source into `out_dir` (the repository root or a scratch folder)."""
    from grpc_tools import protoc

    proto_include = Path(protoc.__file__).resolve().parent / "_proto"
    for source in SOURCES:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{proto_include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
        ]
        # no *_pb2_grpc.py: the transport builds its handlers from the method names itself, so the
        # package does not depend on the exact grpcio release that generated stubs would demand
        args.append(str(source))
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {source}")
    return sorted((out_dir / "openfl_cli" / "proto").glob("*_pb2*.py*"))


if __name__ == "__main__":
    # an optional argument: a scratch folder to generate into instead of the repository
    written = generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT.parent)
    print("\n".join(str(path) for path in written))
    sys.exit(0)
