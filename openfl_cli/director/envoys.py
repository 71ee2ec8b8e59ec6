"""The envoys the director knows: who is online (from their health reports) and the work queued for each.

An envoy is online from its first call until no report has come for `offline_after` seconds. A monitor
thread waits exactly until the next such deadline (no polling) and tells the director's listeners who
went offline, so that an experiment waiting on that envoy fails at once, naming it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from openfl_cli.proto import director_pb2 as dpb

log = logging.getLogger(__name__)

OfflineListener = Callable[[str, float], None]  # (envoy, seconds since its last report)


@dataclass
class EnvoyRecord:
    name: str
    last_seen: float = 0.0  # monotonic
    last_seen_epoch: float = 0.0
    online: bool = False
    experiment: str = ""
    work: deque[dpb.WorkItem] = field(default_factory=deque)


class EnvoyRegistry:
    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not period > 0:
            raise ValueError(f"the health check period must be > 0, got {period}")
        self.period = float(period)
        # two missed reports and a margin for a busy machine
        self.offline_after = 2 * self.period + 1.0
        self._clock = clock
        self._changed = threading.Condition()
        self._envoys: dict[str, EnvoyRecord] = {}
        self._listeners: list[OfflineListener] = []
        self._stopped = False
        self._monitor = threading.Thread(target=self._watch, name="fx-envoy-health", daemon=True)
        self._monitor.start()

    def on_offline(self, listener: OfflineListener) -> None:
        self._listeners.append(listener)

    def seen(self, name: str, experiment: str | None = None) -> None:
        """A report (or any call) from `name`: it is online now."""
        with self._changed:
            record = self._envoys.setdefault(name, EnvoyRecord(name))
            record.last_seen = self._clock()
            record.last_seen_epoch = time.time()
            if experiment is not None:
                record.experiment = experiment
            if not record.online:
                record.online = True
                log.info("envoy %s is online", name)
            self._changed.notify_all()

    def is_online(self, name: str) -> bool:
        with self._changed:
            record = self._envoys.get(name)
            return record is not None and record.online

    def online(self) -> list[str]:
        with self._changed:
            return sorted(name for name, record in self._envoys.items() if record.online)

    def listing(self) -> dpb.EnvoyList:
        with self._changed:
            envoys = [
                dpb.EnvoyInfo(
                    name=record.name,
                    online=record.online,
                    last_seen=record.last_seen_epoch,
                    experiment=record.experiment,
                )
                for record in sorted(self._envoys.values(), key=lambda r: r.name)
            ]
        return dpb.EnvoyList(envoys=envoys, period_seconds=self.period)

    def push(self, name: str, item: dpb.WorkItem) -> None:
        with self._changed:
            self._envoys.setdefault(name, EnvoyRecord(name)).work.append(item)
            self._changed.notify_all()

    def take(self, name: str, wait_seconds: float) -> dpb.WorkItem:
        """The next work item of `name`, waiting up to `wait_seconds` for one (an empty item then)."""
        self.seen(name)
        deadline = self._clock() + wait_seconds
        with self._changed:
            record = self._envoys[name]
            while not record.work and not self._stopped:
                left = deadline - self._clock()
                if left <= 0:
                    return dpb.WorkItem()
                self._changed.wait(left)
            return record.work.popleft() if record.work else dpb.WorkItem()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._monitor.join(timeout=5)

    def _watch(self) -> None:
        with self._changed:
            while not self._stopped:
                now = self._clock()
                lost = [
                    (record.name, now - record.last_seen)
                    for record in self._envoys.values()
                    if record.online and now - record.last_seen >= self.offline_after
                ]
                for name, _ in lost:
                    self._envoys[name].online = False
                    self._envoys[name].experiment = ""
                if lost:
                    self._changed.release()  # listeners take their own locks
                    try:
                        for name, silent in lost:
                            log.warning("envoy %s is offline (no health report for %.0f s)", name, silent)
                            for listener in self._listeners:
                                try:
                                    listener(name, silent)
                                except Exception:  # one broken listener must not end the monitor
                                    log.exception("an offline listener failed for envoy %s", name)
                    finally:
                        self._changed.acquire()
                    continue
                deadlines = [r.last_seen + self.offline_after for r in self._envoys.values() if r.online]
                self._changed.wait(max(0.0, min(deadlines) - now) + 0.01 if deadlines else None)
