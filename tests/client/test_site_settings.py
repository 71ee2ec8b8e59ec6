"""A site's own settings replace the common ones before they are checked: a job may send its script to
named sites only, so the common settings alone name no script."""

from __future__ import annotations

import pytest

from openfl_cli.client.settings import ScriptSettings


def test_a_site_brings_the_script_the_common_settings_lack() -> None:
    common = {"script": None, "script_args": "--lr 0.1", "framework": "numpy"}
    sites = {"site-1": {"script": "src/a.py"}, "site-2": {"script": "src/b.py", "script_args": "--lr 1"}}
    one = ScriptSettings.for_site(common, sites, "site-1")
    two = ScriptSettings.for_site(common, sites, "site-2")
    assert (one.script, one.args, one.framework) == ("src/a.py", ["--lr", "0.1"], "numpy")
    assert (two.script, two.args) == ("src/b.py", ["--lr", "1"])


def test_a_site_without_a_script_anywhere_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="script must name the training script"):
        ScriptSettings.for_site({"script": None}, {"site-1": {"script": "src/a.py"}}, "site-3")
    with pytest.raises(ValueError, match=r"sites\.site-1: device must be 'cuda:N'"):
        ScriptSettings.for_site({"script": "s.py"}, {"site-1": {"device": "gpu0"}}, "site-1")


def test_a_site_device_is_kept() -> None:
    settings = ScriptSettings.for_site({"script": "s.py"}, {"site-2": {"device": "cuda:1"}}, "site-2")
    assert settings.device == "cuda:1"
