"""Sizes the transport sends and the bounds it enforces on everything that arrives from the network."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20

# Room for the protobuf framing around a chunk's payload (tags, lengths, offset).
FRAME_OVERHEAD = 64


@dataclass(frozen=True)
class Limits:
    """`chunk_bytes`: payload bytes per chunk we send. `max_message_bytes`: the largest single message
    (a header or a chunk) we accept; the `max_message_mib` of the federation. The other fields bound the
    header's contents so that a small message cannot announce absurd work."""

    chunk_bytes: int = 2 * MIB
    max_message_bytes: int = 64 * MIB
    max_tensors: int = 100_000
    max_name_chars: int = 1024
    max_rank: int = 32
    max_params: int = 16
    max_param_chars: int = 256
    max_metrics: int = 10_000
    # Bound on a whole downloaded model (client side); None: bounded only by memory. The server bounds
    # each result by the size of the model it sent.
    max_model_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be >= 1, got {self.chunk_bytes}")
        if self.max_message_bytes < self.chunk_bytes + FRAME_OVERHEAD:
            raise ValueError(
                f"max_message_bytes ({self.max_message_bytes}) must hold a chunk of {self.chunk_bytes} bytes"
                f" plus {FRAME_OVERHEAD} bytes of framing"
            )
        # gRPC takes message sizes as a C int.
        if self.max_message_bytes > (1 << 31) - 1:
            raise ValueError(f"max_message_bytes must be below 2 GiB, got {self.max_message_bytes}")

    def grpc_options(self) -> list[tuple[str, int]]:
        """Channel/server options that let messages of our sizes through and nothing bigger."""
        return [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
        ]
