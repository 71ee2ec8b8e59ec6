"""Framework-free checks of the runner templates: plans load, readers come from the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfl_cli.plan import Plan
from tests.runners.helpers import TEMPLATES

MNIST = ["torch/mnist", "keras/mnist", "keras/jax/mnist"]
OURS = [*MNIST, "torch/histology", "keras/histology", "tf_cnn_histology", "tf_2dunet"]


@pytest.mark.parametrize("name", OURS)
def test_plan_loads_with_src_templates_and_default_tasks(name: str) -> None:
    folder = TEMPLATES / name
    plan = Plan.load(folder / "plan/plan.yaml", folder / "plan/cols.yaml", folder / "plan/data.yaml")
    assert plan.config["data_loader"]["template"].startswith("src.dataloader.")
    assert plan.config["task_runner"]["template"].startswith("src.taskrunner.")
    assert set(plan.tasks) == {"aggregated_model_validation", "train", "locally_tuned_model_validation"}
    metric = plan.aggregator_settings.best_metric
    assert plan.tasks["aggregated_model_validation"].kwargs["metrics"] == [metric]
    assert metric == ("dice_coef" if name == "tf_2dunet" else "acc")
    for part in ("src/__init__.py", "src/dataloader.py", "src/taskrunner.py", "requirements.txt"):
        assert (folder / part).is_file(), part


@pytest.mark.parametrize("name", OURS)
def test_templates_use_the_packaged_readers_not_copies(name: str) -> None:
    src = TEMPLATES / name / "src"
    assert not (src / "mnist.py").exists() and not (src / "histology.py").exists()
    text = (src / "dataloader.py").read_text()
    assert "from openfl_cli.data.sharding import resolve_data_path" in text
    if "mnist" in name:
        assert "from openfl_cli.data.mnist import load_mnist" in text
    if "histology" in name:
        assert "from openfl_cli.data.histology import load_histology" in text


def test_requirements_name_this_machines_frameworks() -> None:
    def read(name: str) -> str:
        return Path(TEMPLATES / name / "requirements.txt").read_text()

    assert "torch>=2.3,<=2.14.1" in read("torch/mnist")
    assert "tensorflow" in read("keras/mnist") and "jax" in read("keras/jax/mnist")
