"""The federation's certificate authority and the certificate workflow (see openfl_cli/cli/pki.py)."""
