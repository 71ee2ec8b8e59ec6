"""Nothing may claim a best model that was never written: `RoundOutputs.best_written`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from openfl_cli.federation.aggregator.outputs import BestMetricRule, RoundOutputs, RoundRecord

MODEL = {"w": np.ones((2, 2), np.float32)}


def _outputs(tmp_path: Path, metric: str = "acc") -> RoundOutputs:
    rule = BestMetricRule(metric=metric)
    return RoundOutputs(last_path=tmp_path / "last.pbuf", best_path=tmp_path / "best.pbuf", rule=rule)


def _close(outputs: RoundOutputs, number: int, aggregated: dict[str, dict[str, float]]) -> None:
    best, best_model = outputs.judge(number, aggregated, MODEL, MODEL)
    outputs.round_closed(RoundRecord(number, MODEL, aggregated, [], {}, best, best_model))


def test_a_metric_never_reported_writes_no_best_and_claims_none(tmp_path, caplog):
    outputs = _outputs(tmp_path)
    with caplog.at_level(logging.WARNING):
        for number in range(2):
            _close(outputs, number, {"aggregated_model_validation": {"accuracy": 0.9}})
    assert not (tmp_path / "best.pbuf").exists()
    assert outputs.best_written() is None
    assert (tmp_path / "last.pbuf").is_file()
    said = [r.getMessage() for r in caplog.records if "no best model" in r.getMessage()]
    assert said == [
        "no best model is kept: task aggregated_model_validation reports accuracy, not 'acc'"
        " (aggregator.settings.best_metric)"
    ]


def test_the_best_metric_reported_writes_and_claims_best(tmp_path):
    outputs = _outputs(tmp_path, metric="accuracy")
    _close(outputs, 0, {"aggregated_model_validation": {"accuracy": 0.9}})
    assert outputs.best_written() == tmp_path / "best.pbuf"
    assert (tmp_path / "best.pbuf").is_file()


def test_the_end_of_a_run_says_so_without_a_path():
    from openfl_cli.cli.federation import best_model_text

    assert best_model_text(None).startswith("no best model")
    assert best_model_text(Path("save/best.pbuf")) == "best model save/best.pbuf"
