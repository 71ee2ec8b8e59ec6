"""The generic gRPC core that every service of the transport is built on.

- `network`: addresses and the channel/server options (message limits, keepalive, reconnection).
- `server`: `GrpcServer`, a gRPC server on host:port with TLS material (or insecure).
- `metadata` and `guard`: who a call claims to come from, and the check every call passes first.
- `handlers`: method handlers that run the guard before the method and turn failures into statuses.
- `channel`: a client channel from TLS material, and gRPC errors sorted into refusals, security
  errors and transport failures (which `transport.retry.RetryPolicy` retries).

The federation service (`transport.server`, `transport.client`) is one service on this core.
"""
