"""The seed's FederatedFlow on the LocalRuntime's single_process backend, set up both ways the seed shows."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from openfl_cli.workflow import Aggregator, Collaborator, LocalRuntime  # noqa: E402

pytestmark = pytest.mark.torch
NAMES = ["Portland", "Seattle", "Chandler", "Bangalore"]


def runtime_with_dicts() -> LocalRuntime:
    """The seed's first setup, as written: private attributes given as dicts."""
    from tests.workflow.seed_flows import batch_size_train, mnist_test, mnist_train

    aggregator = Aggregator()
    aggregator.private_attributes = {}
    collaborators = [Collaborator(name=name) for name in NAMES]
    for idx, collaborator in enumerate(collaborators):
        local_train = deepcopy(mnist_train)
        local_test = deepcopy(mnist_test)
        local_train.data = mnist_train.data[idx :: len(collaborators)]
        local_train.targets = mnist_train.targets[idx :: len(collaborators)]
        local_test.data = mnist_test.data[idx :: len(collaborators)]
        local_test.targets = mnist_test.targets[idx :: len(collaborators)]
        collaborator.private_attributes = {
            "train_loader": torch.utils.data.DataLoader(local_train, batch_size=batch_size_train, shuffle=True),  # noqa: E501
            "test_loader": torch.utils.data.DataLoader(local_test, batch_size=batch_size_train, shuffle=True),
        }
    return LocalRuntime(aggregator=aggregator, collaborators=collaborators, backend="single_process")


def callable_to_initialize_collaborator_private_attributes(index, n_collaborators, batch_size, train_dataset, test_dataset):  # noqa: E501
    train = deepcopy(train_dataset)
    test = deepcopy(test_dataset)
    train.data = train_dataset.data[index::n_collaborators]
    train.targets = train_dataset.targets[index::n_collaborators]
    test.data = test_dataset.data[index::n_collaborators]
    test.targets = test_dataset.targets[index::n_collaborators]
    return {
        "train_loader": torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True),
        "test_loader": torch.utils.data.DataLoader(test, batch_size=batch_size, shuffle=True),
    }


def runtime_with_callable(backend: str = "single_process") -> LocalRuntime:
    """The seed's second setup, as written: private attributes from a callable with keyword arguments
    (and its Ray section's `backend='ray'`)."""
    from tests.workflow.seed_flows import mnist_test, mnist_train

    aggregator_ = Aggregator()
    collaborators = []
    for idx, collaborator_name in enumerate(NAMES):
        collaborators.append(
            Collaborator(
                name=collaborator_name,
                private_attributes_callable=callable_to_initialize_collaborator_private_attributes,
                index=idx,
                n_collaborators=len(NAMES),
                train_dataset=mnist_train,
                test_dataset=mnist_test,
                batch_size=64,
            )
        )
    if backend == "ray":
        return LocalRuntime(aggregator=aggregator_, collaborators=collaborators, backend="ray")
    return LocalRuntime(aggregator=aggregator_, collaborators=collaborators)


@pytest.mark.parametrize("make_runtime", [runtime_with_dicts, runtime_with_callable])
def test_the_seed_flow_trains_on_the_single_process_backend(
    make_runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.workflow.seed_flows import FederatedFlow

    monkeypatch.chdir(tmp_path)  # the seed's train step saves model.pth and optimizer.pth here
    torch.manual_seed(0)
    flow = FederatedFlow()
    flow.runtime = make_runtime()
    flow.run()
    # the aggregator's final attributes, never a collaborator's private ones
    assert flow.current_round == 3 and flow.private == 10
    assert 0.5 < flow.local_model_accuracy <= 1.0
    assert not hasattr(flow, "train_loader") and not hasattr(flow, "test_loader")
    assert not hasattr(flow, "training_completed")  # excluded on the way to join
    assert (tmp_path / "model.pth").is_file()
    printed = capsys.readouterr().out
    assert "[aggregator/start] Performing initialization for model" in printed
    assert "[Seattle/aggregated_model_validation] Performing aggregated model validation for collaborator Seattle" in printed  # noqa: E501
    assert "[aggregator/end] This is the end of the flow" in printed
    outputs = flow.runtime.step_outputs
    steps = [(o.participant, o.step) for o in outputs]
    assert steps[0] == ("aggregator", "start") and steps[-1] == ("aggregator", "end")
    assert steps.count(("Chandler", "train")) == 3 and steps.count(("aggregator", "join")) == 3
    train = next(o for o in outputs if o.participant == "Bangalore" and o.step == "train")
    assert "Train Epoch: 1 [0/" in train.stdout


@pytest.mark.ray
def test_the_seed_flow_trains_on_the_ray_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    from tests.workflow.seed_flows import FederatedFlow

    monkeypatch.chdir(tmp_path)
    local_runtime = runtime_with_callable("ray")
    flow = FederatedFlow()
    flow.runtime = local_runtime
    flow.run()
    assert flow.current_round == 3 and 0.5 < flow.local_model_accuracy <= 1.0
    assert not hasattr(flow, "train_loader")
    steps = [(o.participant, o.step) for o in local_runtime.step_outputs]
    assert steps.count(("Seattle", "train")) == 3
