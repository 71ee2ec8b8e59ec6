"""Constructor arguments are recovered from attributes, or the object is refused at `to()`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.job import Executor, FedJob
from openfl_cli.job.arguments import constructor_settings, given_arguments, yaml_safe


class Kept:
    def __init__(self, a: int, b: str = "x", c: Any = None) -> None:
        self.a = a
        self._b = b  # a `_`-prefixed attribute counts
        self.c = c


class Forgets:
    def __init__(self, a: int, scale: float = 1.0) -> None:
        self.a = a
        self.factor = scale  # kept under another name: lost to an export


class ForgetfulExecutor(Executor):
    def __init__(self, lr: float = 0.1, momentum: float = 0.0) -> None:
        self.lr = lr
        self.velocity = momentum

    def execute(self, task_name: str, model: Any, site_name: str) -> Any:
        return model


class WithKwargs(Executor):
    def __init__(self, **options: Any) -> None:
        for key, value in options.items():
            setattr(self, key, value)

    def execute(self, task_name: str, model: Any, site_name: str) -> Any:
        return model


def test_arguments_are_read_from_attributes_of_the_same_name_or_underscored() -> None:
    assert constructor_settings(Kept(1, "y", [1, (2, 3)])) == {"a": 1, "b": "y", "c": [1, [2, 3]]}


def test_an_argument_not_kept_as_an_attribute_is_refused_at_to() -> None:
    job = FedJob("args")
    with pytest.raises(UsageError) as caught:
        job.to_server(Forgets(1, scale=2.0))
    assert str(caught.value) == (
        "Forgets(scale=...): the argument 'scale' is not kept as an attribute of the same name, so the job"
        " cannot be exported; keep it as self.scale"
    )
    # a class that does not record its call cannot prove the default was kept: refused too
    with pytest.raises(UsageError, match="'scale'"):
        job.to_server(Forgets(1))


def test_our_base_classes_know_an_argument_left_at_its_default() -> None:
    job = FedJob("args")
    job.to(ForgetfulExecutor(lr=0.5), "site-1")
    assert job.apps["site-1"].handler is not None
    assert job.apps["site-1"].handler.settings["executor"]["settings"] == {"lr": 0.5}
    job.to(ForgetfulExecutor(momentum=0.0), "site-2")  # given, but its default value
    with pytest.raises(UsageError, match=r"ForgetfulExecutor\(momentum=\.\.\.\)"):
        job.to(ForgetfulExecutor(momentum=0.9), "site-3")
    assert given_arguments(ForgetfulExecutor(0.2)) == {"lr": 0.2}


def test_keyword_arguments_through_kwargs_are_recovered_or_refused() -> None:
    job = FedJob("args")
    job.to(WithKwargs(depth=3), "site-1")
    assert job.apps["site-1"].handler is not None
    assert job.apps["site-1"].handler.settings["executor"]["settings"] == {"depth": 3}


def test_values_must_be_yaml_safe() -> None:
    job = FedJob("args")
    with pytest.raises(UsageError, match=r"Kept\(c=\.\.\.\): a value of type \w*Path .*as a str"):
        job.to_server(Kept(1, c=Path("/tmp")))
    with pytest.raises(UsageError, match=r"type object cannot be exported.*job.as_id"):
        job.to_server(Kept(1, c=object()))
    with pytest.raises(UsageError, match="mapping keys must be strings"):
        job.to_server(Kept(1, c={1: "x"}))
    assert yaml_safe({"k": (np.float32(0.5), np.int64(3), None, True)}, "w") == {"k": [0.5, 3, None, True]}
    assert type(yaml_safe(np.int64(3), "w")) is int
