"""The simulator with a script runner: one runner (one running script) per collaborator across rounds,
whatever the number of threads, closed at the end; a failing script names its site."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.errors import FxError
from openfl_cli.node.simulator import simulate
from openfl_cli.tensors.snapshot import load_snapshot, save_snapshot

SITES = ("site-1", "site-2", "site-3")

PLAN = """
aggregator:
  template: openfl_cli.federation.aggregator.Aggregator
  settings:
    init_state_path: save/init.pbuf
    best_state_path: save/best.pbuf
    last_state_path: save/last.pbuf
    rounds_to_train: 3
    best_metric_task: train
    best_metric: accuracy
collaborator:
  template: openfl_cli.federation.collaborator.Collaborator
  settings:
    use_delta_updates: false
    opt_treatment: RESET
data_loader:
  template: openfl_cli.client.runner.ScriptDataLoader
  settings: {}
task_runner:
  template: openfl_cli.client.runner.ScriptTaskRunner
  settings:
    script: src/train.py
    script_args: --fail-at SITE_THAT_FAILS
    framework: numpy
    initial_model: save/start.pbuf
    launch_external_process: EXTERNAL
network:
  defaults: plan/defaults/network.yaml
assigner:
  template: openfl_cli.federation.assigner.RandomGroupedAssigner
  settings:
    task_groups:
      - name: learning
        percentage: 1.0
        tasks: [train]
tasks:
  train:
    function: train_task
    kwargs:
      metrics: [accuracy, rounds_seen, site]
"""

# each site adds its own number to the model, and counts the rounds it has seen itself
SCRIPT = """
import argparse

import openfl_cli.client as flare

parser = argparse.ArgumentParser()
parser.add_argument("--fail-at", default="")
args = parser.parse_args()
site = flare.get_site_name()
number = float(site.split("-")[1])
seen = 0
flare.init()
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    seen += 1
    if site == args.fail_at and model.current_round == 1:
        raise RuntimeError("disk on fire")
    flare.send(
        flare.FLModel(
            params={name: value + number for name, value in model.params.items()},
            metrics={"accuracy": number, "rounds_seen": seen, "site": number},
            meta={"NUM_STEPS_CURRENT_ROUND": 1},
        )
    )
"""


def workspace(root: Path, *, fails: str = "none", external: bool = False) -> Path:
    folder = root / "job"
    (folder / "plan").mkdir(parents=True)
    (folder / "src").mkdir()
    plan = PLAN.replace("SITE_THAT_FAILS", fails).replace("EXTERNAL", "true" if external else "false")
    (folder / "plan/plan.yaml").write_text(textwrap.dedent(plan))
    (folder / "plan/cols.yaml").write_text(json.dumps({"collaborators": list(SITES)}))
    (folder / "plan/data.yaml").write_text(json.dumps({site: site for site in SITES}))
    (folder / "src/train.py").write_text(textwrap.dedent(SCRIPT))
    save_snapshot(folder / "save/start.pbuf", {"w": np.zeros(4, dtype=np.float32)})
    return folder


def run(folder: Path, **kwargs: Any):
    return simulate(
        folder / "plan/plan.yaml",
        folder / "plan/cols.yaml",
        folder / "plan/data.yaml",
        threads=2,
        show_progress=False,
        **kwargs,
    )


class Quiet:
    interval = 5.0

    def round_closed(self, summary: Any) -> None:
        pass

    def waiting(self, status: Any) -> None:
        pass


@pytest.mark.parametrize("external", [False, True], ids=["in-process", "ex-process"])
def test_each_collaborator_keeps_its_own_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, external: bool
) -> None:
    folder = workspace(tmp_path, external=external)
    monkeypatch.chdir(tmp_path)  # paths come from the workspace, not from here
    result = run(folder, reporter=Quiet())
    assert result.finished and result.rounds_done == 3 and result.collaborator_tasks == 9
    records = [json.loads(line) for line in (folder / "logs/metrics.jsonl").read_text().splitlines()]
    own = {
        (r["node"], r["round"], r["metric"]): r["value"]
        for r in records
        if r["node"] in SITES and r["task"] == "train"
    }
    for site in SITES:
        number = float(site.split("-")[1])
        for round_number in range(3):
            assert own[(site, round_number, "site")] == number  # the site's own script
            assert own[(site, round_number, "rounds_seen")] == round_number + 1  # still running
    assert not [t.name for t in threading.enumerate() if t.name.startswith("fx-script-")]  # all closed
    initial = load_snapshot(folder / "save/init.pbuf").tensors  # written from initial_model
    np.testing.assert_array_equal(initial["w"], np.zeros(4))
    last = load_snapshot(folder / "save/last.pbuf").tensors
    np.testing.assert_allclose(last["w"], np.full(4, 3 * 2.0))  # each round adds the mean of 1, 2, 3


def test_a_failing_script_names_its_site(tmp_path: Path) -> None:
    folder = workspace(tmp_path, fails="site-2")
    with pytest.raises(FxError) as raised:
        run(folder, reporter=Quiet())
    message = str(raised.value)
    assert message.startswith("round 2: site-2's task failed (")
    assert "script src/train.py at site site-2 failed in round 2" in message
    assert "RuntimeError: disk on fire" in message
