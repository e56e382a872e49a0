"""Env processes that misbehave on purpose (or report statistics), for tests of mlx.envs.unity.env.

    python tests/fake_envs.py MODE --mlagents-port PORT [Unity-style args ignored]

MODE: wrong_version (hand-shakes as communication 0.9.0), garbage (sends bytes that are not a
UnityMessageProto), stats (Basic, reporting statistics on the stats side channel), echo (Basic, sending
back every message of the custom channel ECHO_ID, upper-cased), silent (connects, then never answers
again). They speak through mlx's own client, as a real env process would.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid

import numpy as np

from mlx.envs.api import EnvStat, StatAggregation
from mlx.envs.native.basic import BasicEnv
from mlx.envs.unity.communicator_objects.messages_pb2 import UnityMessageProto
from mlx.envs.unity.remote import Session
from mlx.envs.unity.rpc import EnvClient
from mlx.envs.unity.side_channels import IncomingMessage, OutgoingMessage, SideChannel


class StatsBasic(BasicEnv):
    """Basic that reports how many steps it took (SUM) and its last position (MOST_RECENT)."""

    def step(self) -> None:
        super().step()
        self._steps_taken = getattr(self, "_steps_taken", 0) + 1

    def drain_stats(self) -> list[EnvStat]:
        steps, self._steps_taken = getattr(self, "_steps_taken", 0), 0
        if not steps:
            return []
        return [
            EnvStat("Custom/Steps", np.array([float(steps)]), StatAggregation.SUM),
            EnvStat("Custom/Position", self.position[:1].astype(np.float64), StatAggregation.MOST_RECENT),
            EnvStat("Custom/Average", np.array([2.0, 4.0]), StatAggregation.AVERAGE),
        ]


ECHO_ID = uuid.UUID("6e1f4a3c-0d8b-4c1e-9a57-2f1c3b5d7e90")


class EchoChannel(SideChannel):
    """A custom side channel: the env side upper-cases every string it receives and sends it back."""

    channel_id = ECHO_ID
    name = "echo channel"

    def __init__(self, reply: bool) -> None:
        super().__init__()
        self.reply = reply
        self.received: list[str] = []

    def send(self, text: str) -> None:
        msg = OutgoingMessage()
        msg.write_string(text)
        self.queue_message(msg)

    def on_message_received(self, message: IncomingMessage) -> None:
        text = message.read_string()
        self.received.append(text)
        if self.reply:
            self.send(text.upper())


def main() -> int:
    mode = sys.argv[1]
    port = int(sys.argv[sys.argv.index("--mlagents-port") + 1])
    client = EnvClient(port)
    if mode == "echo":
        session = Session(lambda n, seed: BasicEnv(num_areas=max(n, 1), seed=seed), client, timeout_wait=30)
        session.channels.add(EchoChannel(reply=True))
        return session.run()
    if mode == "stats":
        return Session(lambda n, seed: StatsBasic(num_areas=max(n, 1), seed=seed), client, timeout_wait=30).run()
    if mode == "garbage":
        with contextlib.suppress(Exception):  # the trainer refuses it; only its error message matters
            client.exchange_raw(b"\xff\xff\xff\xffnot a protobuf message", timeout=30, wait_for_ready=True)
        return 1
    hello = UnityMessageProto()
    hello.header.status = 200
    init = hello.unity_output.rl_initialization_output
    init.name = "FakeAcademy"
    init.communication_version = "0.9.0" if mode == "wrong_version" else "1.5.0"
    init.package_version = "0.0.1"
    try:
        client.exchange(hello, timeout=30, wait_for_ready=True)
    except Exception:  # noqa: BLE001
        return 1
    if mode == "silent":
        time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
