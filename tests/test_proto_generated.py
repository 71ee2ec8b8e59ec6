"""The committed `openfl_cli/proto/*_pb2*` modules are exactly what `proto/generate.py` produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = REPO_ROOT / "proto"
PACKAGE_DIR = REPO_ROOT / "openfl_cli" / "proto"


def _generated_names(folder: Path) -> set[str]:
    return {path.name for path in folder.glob("*_pb2*.py*")}


def test_every_proto_source_has_committed_modules() -> None:
    sources = sorted((PROTO_DIR / "openfl_cli" / "proto").glob("*.proto"))
    assert sources, "no .proto sources found"
    committed = _generated_names(PACKAGE_DIR)
    for source in sources:
        expected = {f"{source.stem}_pb2.py", f"{source.stem}_pb2.pyi"}
        missing = expected - committed
        assert not missing, f"{source.name}: run `python proto/generate.py` (missing {sorted(missing)})"


def test_committed_modules_match_regeneration(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the dev extra) is needed to run protoc")
    # protoc runs in its own process: in-process it can crash once another native protobuf
    # (TensorFlow's) is loaded by earlier tests
    proc = subprocess.run(
        [sys.executable, str(PROTO_DIR / "generate.py"), str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    fresh_dir = tmp_path / "openfl_cli" / "proto"
    assert {Path(line).parent for line in proc.stdout.split()} == {fresh_dir}
    fresh, committed = _generated_names(fresh_dir), _generated_names(PACKAGE_DIR)
    assert committed == fresh, (
        f"stale or extra modules in openfl_cli/proto: {sorted(committed ^ fresh)}; "
        "run `python proto/generate.py`"
    )
    stale = [
        name for name in sorted(fresh) if (fresh_dir / name).read_bytes() != (PACKAGE_DIR / name).read_bytes()
    ]
    assert not stale, f"{stale} differ from their .proto source; run `python proto/generate.py`"
