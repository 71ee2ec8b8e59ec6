"""A director, envoys and an experimenter as real processes, for the FederatedRuntime's e2e tests and
its benchmark: certificates made with the documented `fx` commands, configs written as the seed shows
them, services started with `fx director start` / `fx envoy start` on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT, fx_env, run_fx, start_fx
from tests.e2e.pki_flow import request_hash_in

HOST = "127.0.0.1"
ENVOYS = ("env_one", "env_two")
USER = "alice"

# The envoys' own code: their data (the bundled digits, sharded) and how they load it.
PRIVATE_ATTRIBUTES = """
import numpy as np
import torch

from openfl_cli.data.mnist import digits_as_mnist


class Digits(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.data = torch.from_numpy(np.array(images))
        self.targets = torch.from_numpy(np.array(labels))

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        image = self.data[index].float().div(255.0).sub(0.1307).div(0.3081).unsqueeze(0)
        return image, self.targets[index]


def envoy_attrs(index, n_collaborators, batch_size=64):
    x_train, y_train, x_test, y_test = digits_as_mnist()
    train = Digits(x_train[index::n_collaborators], y_train[index::n_collaborators])
    test = Digits(x_test[index::n_collaborators], y_test[index::n_collaborators])
    shuffled = torch.Generator().manual_seed(index)
    return {
        "train_loader": torch.utils.data.DataLoader(
            train, batch_size=batch_size, shuffle=True, generator=shuffled
        ),
        "test_loader": torch.utils.data.DataLoader(test, batch_size=batch_size, shuffle=False),
    }
"""


@dataclass(frozen=True)
class Certified:
    director: Path  # holds the authority and the director's certificate
    envoys: dict[str, Path]
    user: Path

    def director_tls(self) -> list[str]:
        cert = self.director / "cert"
        return [
            "-rc",
            str(cert / "cert_chain.crt"),
            "-pk",
            str(cert / "server" / f"director_{HOST}.key"),
            "-oc",
            str(cert / "server" / f"director_{HOST}.crt"),
        ]

    def envoy_tls(self, name: str, holder: str | None = None) -> list[str]:
        cert = self.envoys[holder or name] / "cert"
        owner = holder or name
        return [
            "-rc",
            str(cert / "cert_chain.crt"),
            "-pk",
            str(cert / "client" / f"envoy_{owner}.key"),
            "-oc",
            str(cert / "client" / f"envoy_{owner}.crt"),
        ]

    def user_director_info(self, port: int) -> dict[str, object]:
        cert = self.user / "cert"
        return {
            "director_node_fqdn": HOST,
            "director_port": port,
            "cert_chain": str(cert / "cert_chain.crt"),
            "api_cert": str(cert / "client" / f"experimenter_{USER}.crt"),
            "api_private_key": str(cert / "client" / f"experimenter_{USER}.key"),
        }


def certify(root: Path, envoys: tuple[str, ...] = ENVOYS) -> Certified:
    """The README's three-machine sequence, each machine a folder; only the zips travel."""
    director = root / "director"
    director.mkdir(parents=True)
    run_fx(["director", "create-ca"], cwd=director)
    run_fx(["director", "generate-cert-request", "--fqdn", HOST], cwd=director)
    run_fx(["director", "certify", "--fqdn", HOST, "-s"], cwd=director)
    folders: dict[str, Path] = {}
    for kind, name in [*(("envoy", e) for e in envoys), ("experimenter", USER)]:
        node = root / f"{kind}_{name}"
        node.mkdir()
        printed = run_fx([kind, "generate-cert-request", "-n", name], cwd=node).stdout
        request = shutil.copy(node / f"{kind}_{name}_to_director_cert_request.zip", director)
        run_fx(
            [kind, "certify", "--request-pkg", str(request), "--request-hash", request_hash_in(printed)],
            cwd=director,
        )
        signed = shutil.copy(director / f"director_to_{kind}_{name}_signed_cert.zip", node)
        run_fx([kind, "certify", "--import", str(signed)], cwd=node)
        folders[name] = node
    user = folders.pop(USER)
    return Certified(director, folders, user)


@dataclass
class Services:
    """The director and envoys of one test, each in its own folder under `root`."""

    certified: Certified
    root: Path
    tls: bool = True
    period: float = 1.0
    port: int = 0
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_director(self, timeout: float = 60.0) -> int:
        folder = self.folder("director")
        config = {
            "settings": {"listen_host": HOST, "listen_port": 0, "envoy_health_check_period": self.period},
            "aggregator": {"private_attributes": "director_attrs.aggregator_attrs"},
        }
        (folder / "director_attrs.py").write_text("aggregator_attrs = {}\n")
        (folder / "director_config.yaml").write_text(yaml.safe_dump(config))
        tls = self.certified.director_tls() if self.tls else ["--disable-tls"]
        process = start_fx(
            ["director", "start", "-c", "director_config.yaml", *tls],
            folder,
            folder / "director.log",
            env={"METAFLOW_USER": "tester"},
        )
        self.processes["director"] = process
        found = wait_for(
            folder / "director.log", rf"director listening on {re.escape(HOST)}:(\d+)", process, timeout
        )
        self.port = int(found.group(1))
        return self.port

    def start_envoy(
        self,
        name: str,
        *,
        review: str = "accept",
        index: int | None = None,
        cert_of: str | None = None,
        wait: bool = True,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        folder = self.folder(name)
        (folder / "private_attributes.py").write_text(PRIVATE_ATTRIBUTES)
        position = index if index is not None else list(ENVOYS).index(name) if name in ENVOYS else 0
        config = {
            name: {
                "callable_func": {
                    "template": "private_attributes.envoy_attrs",
                    "settings": {"index": position, "n_collaborators": len(ENVOYS)},
                },
                "plan_review": review,
            }
        }
        (folder / "envoy_config.yaml").write_text(yaml.safe_dump(config))
        tls = self.certified.envoy_tls(name, cert_of) if self.tls else ["--disable-tls"]
        log = folder / "envoy.log"
        with contextlib.suppress(FileNotFoundError):
            log.unlink()
        process = start_fx(
            [
                "envoy",
                "start",
                "-n",
                name,
                "-ec",
                "envoy_config.yaml",
                "-dh",
                HOST,
                "-dp",
                str(self.port),
                *tls,
            ],
            folder,
            log,
            env=env,
        )
        self.processes[name] = process
        if wait:
            wait_for(log, rf"envoy {name} connected", process, timeout)
        return process

    def run_user(
        self, script: str, *args: str, timeout: float = 300.0, name: str = "user"
    ) -> subprocess.CompletedProcess[str]:
        folder = self.folder(name)
        path = folder / "experiment_main.py"
        path.write_text(script)
        env = fx_env({"PYTHONPATH": str(REPO_ROOT)})
        return subprocess.run(
            [sys.executable, str(path), *args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_user(self, script: str, *args: str, name: str = "user") -> subprocess.Popen:
        folder = self.folder(name)
        path = folder / "experiment_main.py"
        path.write_text(script)
        env = fx_env({"PYTHONPATH": str(REPO_ROOT)})
        handle = open(folder / "user.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, str(path), *args], cwd=folder, env=env, stdout=handle, stderr=subprocess.STDOUT
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def stop_all(self) -> None:
        for name in [n for n in self.processes if n != "director"] + ["director"]:
            self.stop(name)

    def log(self, name: str) -> str:
        for candidate in ("envoy.log", "director.log", "user.log"):
            path = self.root / name / candidate
            if path.is_file():
                return path.read_text(errors="replace")
        return ""


def wait_for(log: Path, pattern: str, process: subprocess.Popen, timeout: float) -> re.Match[str]:
    """The first match of `pattern` in `log`, waiting for the process to print it."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace") if log.is_file() else ""
        found = re.search(pattern, text)
        if found:
            return found
        if process.poll() is not None:
            raise AssertionError(f"{log.parent.name} exited {process.returncode} before {pattern!r}:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{log.parent.name} did not print {pattern!r} within {timeout} s:\n{text}")
        time.sleep(0.1)
