"""Modules generated from `proto/openfl_cli/proto/*.proto` by `python proto/generate.py`."""
