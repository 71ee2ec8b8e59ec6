"""Workspaces: create one from a template, export and import it, turn snapshots into native models.

Every module here imports only the standard library at the top; plan and tensor code is imported
inside the functions that need it.
"""

from openfl_cli.workspace.create import create_workspace
from openfl_cli.workspace.export import export_workspace
from openfl_cli.workspace.import_archive import import_workspace, install_workspace_requirements
from openfl_cli.workspace.model import get_model, save_model
from openfl_cli.workspace.templates import list_templates, template_path

__all__ = [
    "create_workspace",
    "export_workspace",
    "get_model",
    "import_workspace",
    "install_workspace_requirements",
    "list_templates",
    "save_model",
    "template_path",
]
