"""Starting a local Ray instance: one that did not come up in time is started once more."""

from __future__ import annotations

from typing import Any

import pytest

from openfl_cli.workflow.ray_backend import _start


class FakeRay:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def init(self, **options: Any) -> None:
        self.calls.append("init")
        if self.failures:
            raise self.failures.pop(0)

    def shutdown(self) -> None:
        self.calls.append("shutdown")


def test_a_local_start_that_timed_out_is_tried_again() -> None:
    ray = FakeRay([RuntimeError("Timed out waiting for file /tmp/ray/session/gcs_server_port")])
    _start(ray, {}, local=True)
    assert ray.calls == ["init", "shutdown", "init"]


def test_other_failures_and_remote_clusters_are_not_retried() -> None:
    for failure, local in ((RuntimeError("bad option"), True), (RuntimeError("Timed out"), False)):
        ray = FakeRay([failure])
        with pytest.raises(RuntimeError):
            _start(ray, {}, local=local)
        assert ray.calls == ["init"]


def test_a_second_timeout_is_raised() -> None:
    ray = FakeRay([RuntimeError("Timed out a"), RuntimeError("Timed out b")])
    with pytest.raises(RuntimeError, match="Timed out b"):
        _start(ray, {}, local=True)
