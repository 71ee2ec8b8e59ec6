"""Addresses and the options every channel and server of the transport shares."""

from __future__ import annotations

from openfl_cli.transport.limits import Limits

# A dead client's connection is noticed by the server within KEEPALIVE_TIME + KEEPALIVE_TIMEOUT.
SERVER_KEEPALIVE_TIME_MS = 30_000
SERVER_KEEPALIVE_TIMEOUT_MS = 10_000
CLIENT_MIN_PING_INTERVAL_MS = 10_000  # what the server tolerates from clients' keepalive pings
CLIENT_KEEPALIVE_TIME_MS = 20_000
CLIENT_KEEPALIVE_TIMEOUT_MS = 10_000

Option = tuple[str, int | str]


def host_port(address: str, port: int) -> str:
    """`address:port`, with IPv6 addresses in brackets."""
    return f"[{address}]:{port}" if ":" in address and not address.startswith("[") else f"{address}:{port}"


def server_options(limits: Limits) -> list[Option]:
    return [
        *limits.grpc_options(),
        ("grpc.keepalive_time_ms", SERVER_KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", SERVER_KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", CLIENT_MIN_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
    ]


def channel_options(limits: Limits, reconnect_seconds: float, server_name: str | None = None) -> list[Option]:
    """`reconnect_seconds`: how often the channel itself tries to reconnect (kept at most 1 s so that a
    retry finds it connected). `server_name`: the name the server's certificate must carry, when it is
    not the address dialled."""
    backoff_ms = int(1000 * max(0.1, min(reconnect_seconds, 1.0)))
    options: list[Option] = [
        *limits.grpc_options(),
        ("grpc.keepalive_time_ms", CLIENT_KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", CLIENT_KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", backoff_ms),
        ("grpc.min_reconnect_backoff_ms", backoff_ms),
        ("grpc.max_reconnect_backoff_ms", backoff_ms),
        ("grpc.enable_retries", 0),  # retries are the caller's: bounded, and never after a refusal
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options
