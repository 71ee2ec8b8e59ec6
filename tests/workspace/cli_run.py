"""What the workspace tests share: `fx` run in process, its exit code and output."""

from __future__ import annotations

import pytest

from openfl_cli.cli.main import main


def fx_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`fx ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
