"""`director_config.yaml` and `envoy_config.yaml`: the seed's examples as written, the defaults, the
private attributes they name (a dict, a callable, callable_func with settings), and one-line errors
(PlanError, exit code 2) naming the file and the key."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from openfl_cli.director.config import load_director_config
from openfl_cli.envoy.config import load_envoy_config
from openfl_cli.errors import PlanError, UsageError

# The seed's director_config.yaml and envoy_config.yaml, as the seed writes them.
SEED_DIRECTOR_CONFIG = """\
settings:
    listen_host: localhost
    listen_port: 50050
    envoy_health_check_period: 5

aggregator:
    private_attributes: private_attributes.aggregator_attrs
"""

SEED_ENVOY_CONFIG = """\
envoy_one:
    private_attributes: private_attributes.envoy_one_attrs
"""

PRIVATE_ATTRIBUTES = """\
aggregator_attrs = {"test_dataset": [1, 2, 3]}
envoy_one_attrs = {"train_loader": "one's data"}
not_a_mapping = 42


def envoy_attrs(index, n_collaborators, batch_size=64):
    return {"shard": (index, n_collaborators), "batch_size": batch_size}


def lazy_attrs():
    return {"built": True}
"""

MODULE = "private_attributes"


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A config folder holding the operator's `private_attributes.py`; what importing it changed in
    sys.path and sys.modules is undone afterwards, so that each test imports its own module."""
    (tmp_path / f"{MODULE}.py").write_text(PRIVATE_ATTRIBUTES)
    saved_path = list(sys.path)
    sys.modules.pop(MODULE, None)
    yield tmp_path
    sys.path[:] = saved_path
    sys.modules.pop(MODULE, None)


def _write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _plan_error(excinfo: pytest.ExceptionInfo[PlanError], path: Path) -> str:
    """The one-line message, after checking what every config error shares."""
    error = excinfo.value
    assert isinstance(error, UsageError) and error.exit_code == 2
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# -- the director --------------------------------------------------------------------------------------


def test_the_seed_director_config_loads_as_written(folder: Path) -> None:
    path = _write(folder, SEED_DIRECTOR_CONFIG, "director_config.yaml")
    config = load_director_config(path)
    assert config.path == path
    assert (config.listen_host, config.listen_port, config.health_period) == ("localhost", 50050, 5.0)
    aggregator = config.aggregator.participant("aggregator")
    assert aggregator.name == "aggregator"
    assert aggregator.initialize_private_attributes() == {"test_dataset": [1, 2, 3]}


def test_director_defaults(folder: Path) -> None:
    config = load_director_config(_write(folder, ""))
    assert config.listen_host == "localhost"
    assert config.listen_port == 50050
    assert config.health_period == 5.0
    assert config.review_timeout == 24 * 3600.0
    assert config.aggregator.participant("aggregator").initialize_private_attributes() == {}


def test_director_settings_are_read(folder: Path) -> None:
    path = _write(
        folder,
        """
        settings:
          listen_host: 0.0.0.0
          listen_port: 0
          envoy_health_check_period: 0.2
          review_timeout: 60
        aggregator:
        """,
    )
    config = load_director_config(path)
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 0)
    assert (config.health_period, config.review_timeout) == (0.2, 60.0)
    assert isinstance(config.review_timeout, float)


def test_a_relative_path_is_made_absolute(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(folder, SEED_DIRECTOR_CONFIG, "director_config.yaml")
    monkeypatch.chdir(folder)
    config = load_director_config("director_config.yaml")
    assert config.path == folder / "director_config.yaml"
    assert config.aggregator.folder == folder


def test_a_missing_director_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(PlanError, match="file not found") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)


def test_an_unknown_section_is_refused_with_a_suggestion(folder: Path) -> None:
    path = _write(folder, "setings:\n  listen_port: 1\n")
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path)
    message = _plan_error(excinfo, path)
    assert excinfo.value.key == "setings"
    assert "unknown section (did you mean 'settings'?)" in message
    assert "expected one of: aggregator, settings" in message


def test_an_unknown_setting_is_refused_with_a_suggestion(folder: Path) -> None:
    path = _write(folder, "settings:\n  listen_prot: 50051\n")
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path)
    message = _plan_error(excinfo, path)
    assert excinfo.value.key == "settings.listen_prot"
    assert f"{path}: settings.listen_prot: unknown setting (did you mean 'listen_port'?)" in message


def test_settings_must_be_a_mapping(folder: Path) -> None:
    path = _write(folder, "settings: [listen_port]\n")
    with pytest.raises(PlanError, match="settings: expected a mapping") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)


@pytest.mark.parametrize("port", ["70000", "-1", "true", "'50050'", "5.5"])
def test_a_bad_port_is_refused(folder: Path, port: str) -> None:
    path = _write(folder, f"settings:\n  listen_port: {port}\n")
    with pytest.raises(PlanError, match=r"settings\.listen_port: expected a port 0\.\.65535") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)


@pytest.mark.parametrize("host", ["''", "5", "[a]"])
def test_a_bad_host_is_refused(folder: Path, host: str) -> None:
    path = _write(folder, f"settings:\n  listen_host: {host}\n")
    with pytest.raises(PlanError, match=r"settings\.listen_host: expected a host name") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)


@pytest.mark.parametrize("key", ["envoy_health_check_period", "review_timeout"])
@pytest.mark.parametrize("value", ["-1", "0", ".inf", ".nan", "true", "soon"])
def test_seconds_must_be_a_positive_number(folder: Path, key: str, value: str) -> None:
    path = _write(folder, f"settings:\n  {key}: {value}\n")
    with pytest.raises(PlanError, match=rf"settings\.{key}: expected a number of seconds > 0") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)
    assert excinfo.value.key == f"settings.{key}"


def test_a_config_that_is_not_a_mapping_is_refused(folder: Path) -> None:
    path = _write(folder, "- settings\n")
    with pytest.raises(PlanError, match="expected a mapping at the top, got list") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)


def test_invalid_yaml_names_the_line(folder: Path) -> None:
    path = _write(folder, "settings:\n  listen_port: [1\n")
    with pytest.raises(PlanError, match="invalid YAML at line") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)


def test_private_attributes_must_be_dotted(folder: Path) -> None:
    path = _write(folder, "aggregator:\n  private_attributes: aggregator_attrs\n")
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path)
    message = _plan_error(excinfo, path)
    assert "aggregator" in message and "private_attributes" in message
    assert "expected module.attribute, got 'aggregator_attrs'" in message


def test_a_private_attributes_error_names_the_file_and_the_dotted_key(folder: Path) -> None:
    path = _write(folder, "aggregator:\n  private_attributes: aggregator_attrs\n")
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path)
    assert (excinfo.value.file, excinfo.value.key) == (str(path), "aggregator.private_attributes")


def test_the_aggregator_section_must_be_a_mapping(folder: Path) -> None:
    path = _write(folder, "aggregator: private_attributes.aggregator_attrs\n")
    with pytest.raises(PlanError, match="aggregator: expected a mapping, got str") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)


def test_an_unknown_aggregator_key_is_refused(folder: Path) -> None:
    path = _write(folder, "aggregator:\n  private_attribute: private_attributes.aggregator_attrs\n")
    with pytest.raises(PlanError, match="did you mean 'private_attributes'"):
        load_director_config(path)


def test_a_missing_module_is_named_when_the_aggregator_is_built(folder: Path) -> None:
    path = _write(folder, "aggregator:\n  private_attributes: no_such_module.aggregator_attrs\n")
    config = load_director_config(path)  # the operator's code is imported when the director starts
    with pytest.raises(PlanError) as excinfo:
        config.aggregator.participant("aggregator")
    message = _plan_error(excinfo, path)
    assert "aggregator.private_attributes" in message
    assert "cannot import no_such_module: ModuleNotFoundError" in message


def test_a_module_that_fails_to_import_is_named_with_its_error(folder: Path) -> None:
    (folder / "broken_attrs.py").write_text("raise RuntimeError('no data here')\n")
    path = _write(folder, "aggregator:\n  private_attributes: broken_attrs.aggregator_attrs\n")
    try:
        with pytest.raises(PlanError) as excinfo:
            load_director_config(path).aggregator.participant("aggregator")
    finally:
        sys.modules.pop("broken_attrs", None)
    assert "cannot import broken_attrs: RuntimeError: no data here" in _plan_error(excinfo, path)


def test_a_missing_attribute_is_named(folder: Path) -> None:
    path = _write(folder, "aggregator:\n  private_attributes: private_attributes.no_such_attrs\n")
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path).aggregator.participant("aggregator")
    message = _plan_error(excinfo, path)
    assert "aggregator.private_attributes" in message
    assert "module private_attributes has no attribute 'no_such_attrs'" in message


def test_an_attribute_neither_dict_nor_callable_is_refused(folder: Path) -> None:
    path = _write(folder, "aggregator:\n  private_attributes: private_attributes.not_a_mapping\n")
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path).aggregator.participant("aggregator")
    message = _plan_error(excinfo, path)
    assert "private_attributes" in message
    assert "private_attributes.not_a_mapping is a int; expected a dict or a callable" in message


def test_a_callable_attribute_is_called_once_built(folder: Path) -> None:
    path = _write(folder, "aggregator:\n  private_attributes: private_attributes.lazy_attrs\n")
    participant = load_director_config(path).aggregator.participant("aggregator")
    assert participant.initialize_private_attributes() == {"built": True}


@pytest.mark.parametrize(
    "callable_func",
    ["{settings: {index: 1}}", "private_attributes.envoy_attrs", "{template: envoy_attrs}"],
)
def test_callable_func_needs_a_dotted_template(folder: Path, callable_func: str) -> None:
    path = _write(folder, f"aggregator:\n  callable_func: {callable_func}\n")
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path)
    message = _plan_error(excinfo, path)
    assert "callable_func: expected {template: module.function, settings: {...}}" in message


def test_an_unknown_key_in_callable_func_is_named(folder: Path) -> None:
    path = _write(
        folder,
        """
        aggregator:
          callable_func:
            template: private_attributes.envoy_attrs
            setings: {index: 0}
        """,
    )
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path)
    message = _plan_error(excinfo, path)
    assert excinfo.value.key == "aggregator.callable_func.setings"
    assert "callable_func.setings: unknown key; expected template, settings" in message


def test_callable_func_settings_must_be_keyword_arguments(folder: Path) -> None:
    path = _write(
        folder,
        "aggregator:\n  callable_func: {template: private_attributes.envoy_attrs, settings: [1, 2]}\n",
    )
    with pytest.raises(PlanError, match=r"callable_func\.settings: expected a mapping") as excinfo:
        load_director_config(path)
    _plan_error(excinfo, path)


def test_a_callable_func_template_that_is_not_callable_is_refused(folder: Path) -> None:
    path = _write(folder, "aggregator:\n  callable_func: {template: private_attributes.not_a_mapping}\n")
    with pytest.raises(PlanError) as excinfo:
        load_director_config(path).aggregator.participant("aggregator")
    message = _plan_error(excinfo, path)
    assert "callable_func.template" in message and "is not callable" in message


# -- the envoy -----------------------------------------------------------------------------------------


def test_the_seed_envoy_config_loads_as_written(folder: Path) -> None:
    path = _write(folder, SEED_ENVOY_CONFIG, "envoy_config.yaml")
    config = load_envoy_config(path, "envoy_one")
    assert (config.path, config.name, config.plan_review) == (path, "envoy_one", "accept")
    participant = config.private.participant("envoy_one")
    assert participant.initialize_private_attributes() == {"train_loader": "one's data"}


def test_callable_func_gets_its_settings_as_keyword_arguments(folder: Path) -> None:
    path = _write(
        folder,
        """
        env_two:
          callable_func:
            template: private_attributes.envoy_attrs
            settings: {index: 1, n_collaborators: 2, batch_size: 8}
          plan_review: review
        """,
    )
    config = load_envoy_config(path, "env_two")
    assert config.plan_review == "review"
    assert dict(config.private.settings) == {"index": 1, "n_collaborators": 2, "batch_size": 8}
    attributes = config.private.participant("env_two").initialize_private_attributes()
    assert attributes == {"shard": (1, 2), "batch_size": 8}


def test_callable_func_wins_over_private_attributes(folder: Path) -> None:
    path = _write(
        folder,
        """
        env_one:
          private_attributes: private_attributes.envoy_one_attrs
          callable_func: {template: private_attributes.lazy_attrs}
        """,
    )
    participant = load_envoy_config(path, "env_one").private.participant("env_one")
    assert participant.initialize_private_attributes() == {"built": True}


def test_an_empty_envoy_section_has_no_private_attributes(folder: Path) -> None:
    config = load_envoy_config(_write(folder, "env_one:\n"), "env_one")
    assert config.plan_review == "accept"
    assert config.private.participant("env_one").initialize_private_attributes() == {}


@pytest.mark.parametrize("policy", ["accept", "review"])
def test_plan_review_policies(folder: Path, policy: str) -> None:
    path = _write(folder, f"env_one:\n  plan_review: {policy}\n")
    assert load_envoy_config(path, "env_one").plan_review == policy


@pytest.mark.parametrize("policy", ["reject", "true", "Accept"])
def test_an_invalid_plan_review_is_refused(folder: Path, policy: str) -> None:
    path = _write(folder, f"env_one:\n  plan_review: {policy}\n")
    with pytest.raises(PlanError) as excinfo:
        load_envoy_config(path, "env_one")
    message = _plan_error(excinfo, path)
    assert excinfo.value.key == "env_one.plan_review"
    assert "expected one of accept, review" in message


def test_a_name_missing_from_the_envoy_config_lists_the_sections(folder: Path) -> None:
    path = _write(folder, "env_one:\nenv_two:\n")
    with pytest.raises(PlanError) as excinfo:
        load_envoy_config(path, "env_three")
    message = _plan_error(excinfo, path)
    assert "no section for envoy 'env_three' (sections: env_one, env_two)" in message


def test_an_empty_envoy_config_has_no_sections(folder: Path) -> None:
    path = _write(folder, "")
    with pytest.raises(PlanError, match=r"\(sections: none\)") as excinfo:
        load_envoy_config(path, "env_one")
    _plan_error(excinfo, path)


def test_an_unknown_envoy_key_is_refused_with_a_suggestion(folder: Path) -> None:
    path = _write(folder, "env_one:\n  private_attribute: private_attributes.envoy_one_attrs\n")
    with pytest.raises(PlanError) as excinfo:
        load_envoy_config(path, "env_one")
    message = _plan_error(excinfo, path)
    assert excinfo.value.key == "env_one.private_attribute"
    assert "unknown setting (did you mean 'private_attributes'?)" in message


def test_an_envoy_section_must_be_a_mapping(folder: Path) -> None:
    path = _write(folder, "env_one: private_attributes.envoy_one_attrs\n")
    with pytest.raises(PlanError, match="env_one: expected a mapping, got str") as excinfo:
        load_envoy_config(path, "env_one")
    _plan_error(excinfo, path)


def test_an_envoy_callable_func_error_names_the_envoy(folder: Path) -> None:
    path = _write(folder, "env_one:\n  callable_func: {template: private_attributes.envoy_attrs, x: 1}\n")
    with pytest.raises(PlanError) as excinfo:
        load_envoy_config(path, "env_one")
    assert f"{path}: env_one.callable_func.x: unknown key" in _plan_error(excinfo, path)


def test_two_configs_in_one_process_each_import_their_own_module(folder: Path, tmp_path: Path) -> None:
    first = _write(folder, "aggregator:\n  private_attributes: private_attributes.aggregator_attrs\n")
    assert load_director_config(first).aggregator.participant("aggregator").private_attributes
    other = tmp_path / "other"
    other.mkdir()
    (other / f"{MODULE}.py").write_text("aggregator_attrs = {'other': True}\n")
    second = _write(other, "aggregator:\n  private_attributes: private_attributes.aggregator_attrs\n")
    participant = load_director_config(second).aggregator.participant("aggregator")
    assert participant.initialize_private_attributes() == {"other": True}
