"""The `fx` entry point: fast start, completion, one-line usage errors."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import fx_env, run_fx

HEAVY = ("grpc", "numpy", "torch", "tensorflow", "keras", "jax", "ray", "yaml", "cryptography", "sklearn")


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from openfl_cli.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('LOADED:' + ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=fx_env(), check=True
    )
    loaded = proc.stdout.rsplit("LOADED:", 1)[1].strip()
    assert loaded == "", f"fx --help imported: {loaded}"


def test_every_registered_command_loads_and_has_help(tmp_path) -> None:
    from click.testing import CliRunner

    from openfl_cli.cli.main import COMMANDS, LEAVES, cli

    runner = CliRunner()
    for group, (_help, commands) in COMMANDS.items():
        for name in commands:
            result = runner.invoke(cli, [group, name, "--help"])
            assert result.exit_code == 0, f"fx {group} {name} --help: {result.output}"
    for name in LEAVES:
        assert runner.invoke(cli, [name, "--help"]).exit_code == 0


def test_unknown_command_is_one_line_and_exit_2(tmp_path) -> None:
    proc = run_fx(["workspace", "frobnicate"], tmp_path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "frobnicate" in lines[0], proc.stderr


def test_library_error_is_one_line_without_traceback_unless_debug(tmp_path) -> None:
    proc = run_fx(["plan", "validate", "-p", "missing/plan.yaml"], tmp_path, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("fx: error: ")
    assert "missing/plan.yaml" in proc.stderr
    debug = run_fx(["-l", "debug", "plan", "validate", "-p", "missing/plan.yaml"], tmp_path, check=False)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_bash_completion_script_and_completions(tmp_path) -> None:
    env = fx_env({"_FX_COMPLETE": "bash_source"})
    script = subprocess.run(
        [sys.executable, "-m", "openfl_cli"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert "_fx_completion" in script.stdout and "complete" in script.stdout
    env = fx_env({"_FX_COMPLETE": "bash_complete", "COMP_WORDS": "fx work", "COMP_CWORD": "1"})
    words = subprocess.run(
        [sys.executable, "-m", "openfl_cli"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert "workspace" in words.stdout


def test_version(tmp_path) -> None:
    from openfl_cli import __version__

    assert __version__ in run_fx(["--version"], tmp_path).stdout
