"""gRPC transport of ML-Agents' protocol: the trainer's server (one per env, one port each) and the env's client.

The environment calls ``Exchange`` with what happened and blocks until the trainer answers with what to do
next; the trainer therefore holds each call open until its reply is ready. ``EnvServer`` turns that into
``receive()`` / ``reply()`` on the trainer's thread: the call's handler (a grpc.aio coroutine on one
event loop shared by all servers, run by the trainer's thread itself while it waits) queues the raw
request bytes and awaits the reply bytes, with no thread between them.

Why raw bytes rather than generated (de)serialisers: a message that does not parse, or that is larger
than allowed, must end in one clear error on the trainer's side rather than in a call gRPC fails
silently while the trainer waits. So the server accepts up to twice ``max_message_bytes`` at the gRPC
level, measures and parses each message itself, and reports what was wrong. A call cancelled by the
client (the env process died) is reported at once, so a crash is noticed without waiting for a timeout.

Security: the server binds 127.0.0.1 unless told otherwise (``env.bind``), disables SO_REUSEPORT (which
gRPC enables by default and which would let a second process silently share the port), and accepts one
environment per port: a second concurrent caller is refused.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from mlx.envs.unity.communicator_objects.messages_pb2 import UnityMessageProto
from mlx.envs.unity.protocol import STATUS_CLOSE
from mlx.errors import EnvDisconnected, ProtocolError

SERVICE = "communicator_objects.UnityToExternalProto"
METHOD = f"/{SERVICE}/Exchange"
_POLL_S = 0.05  # how often a waiting receive() checks that the env process is still alive


@dataclass
class _Event:
    kind: str  # "message", "error" or "disconnected"
    data: bytes = b""
    call: _Call | None = None
    text: str = ""


class _Call:
    """One open Exchange call: its handler awaits ``future`` on the loop until the trainer replies."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[bytes | None] = loop.create_future()

    @property
    def answered(self) -> bool:
        return self.future.done()

    def answer(self, reply: bytes | None) -> None:
        """Hand the reply (None: refuse the call) to the handler, which sends it when the loop next runs."""
        if not self.future.done():
            self.future.set_result(reply)


class _Loop:
    """The asyncio loop of every EnvServer of this process, run by the trainer's own thread while it waits
    (``wait``), not by a thread of its own: a message goes from gRPC's poller straight to the thread that
    parses it, and a reply is a future's result, with no cross-thread hand-off and no second thread woken
    per exchange (measured: ~30% less CPU per exchange than a loop thread with queues). Between waits the
    loop is idle; gRPC's own threads keep the connections, and calls arriving meanwhile queue up."""

    _instance: _Loop | None = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.lock = threading.RLock()  # one thread runs the loop at a time (e.g. envs stepped from two threads)

    @classmethod
    def get(cls) -> _Loop:
        with cls._guard:
            if cls._instance is None or cls._instance.loop.is_closed():
                cls._instance = cls()
            return cls._instance

    def run(self, awaitable: Any, timeout: float = 30.0) -> Any:
        """Run the loop until ``awaitable`` is done (at most ``timeout`` seconds)."""
        with self.lock:
            return self.loop.run_until_complete(asyncio.wait_for(awaitable, timeout))

    def spin(self) -> None:
        """One pass of the loop: a reply just given is handed to gRPC, which sends it on its own threads."""
        with self.lock:
            self.loop.call_soon(self.loop.stop)
            self.loop.run_forever()

    def wait(self, future: asyncio.Future[Any], seconds: float) -> None:
        """Run the loop until ``future`` is done or ``seconds`` pass (the future is then left pending)."""
        with self.lock:
            if future.done():
                return
            timer = self.loop.call_later(seconds, self.loop.stop)
            future.add_done_callback(_stop_loop)
            try:
                self.loop.run_forever()
            finally:
                timer.cancel()
                future.remove_done_callback(_stop_loop)


def _stop_loop(future: asyncio.Future[Any]) -> None:
    future.get_loop().stop()


class EnvServer:
    """The trainer's end of one env connection: a gRPC server on one port."""

    def __init__(self, port: int, bind: str = "127.0.0.1", max_message_bytes: int = 64 << 20) -> None:
        self.max_message_bytes = int(max_message_bytes)
        self._inbox: deque[_Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._pending: _Call | None = None
        self._busy = False  # an Exchange call is in progress (only one environment per port)
        self._closed = False
        self._loop = _Loop.get()
        address = f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"
        self.port = self._loop.run(self._start(address))
        if self.port == 0:
            raise ProtocolError(
                f"cannot listen on {address}: the port is in use (another run or env?) or the address is not "
                "this machine's; choose another env.base_port (or env.bind)"
            )

    async def _start(self, address: str) -> int:
        cap = min(2 * self.max_message_bytes, 2**31 - 1)
        self._server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", cap),
                ("grpc.max_send_message_length", -1),
            ],
        )
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Exchange": grpc.unary_unary_rpc_method_handler(self._exchange)}
        )
        self._server.add_generic_rpc_handlers((handler,))
        try:
            port = self._server.add_insecure_port(address)
        except RuntimeError:
            port = 0
        if port:
            await self._server.start()
        return port

    # ---- on the loop (run by the trainer's thread) -------------------------------------------------
    def _post(self, event: _Event) -> None:
        self._inbox.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _exchange(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if self._busy or self._closed:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "this port already serves an environment" if self._busy else "the trainer is closing",
            )
        self._busy = True
        call = _Call(asyncio.get_running_loop())
        try:
            if len(request) > self.max_message_bytes:
                self._post(
                    _Event(
                        "error",
                        text=f"the environment sent a message of {len(request) / 2**20:.1f} MiB, above the limit of "
                        f"{self.max_message_bytes / 2**20:.0f} MiB (env.max_message_mb); raise it if this is expected",
                    )
                )
                reply = None
            else:
                self._post(_Event("message", request, call))
                reply = await call.future
        except asyncio.CancelledError:  # the client went away (its process died) while we held its call
            if not call.answered:
                call.answer(None)
                self._post(_Event("disconnected", text="the environment cancelled its call (it exited?)"))
            raise
        finally:
            self._busy = False
        if reply is None:
            await context.abort(grpc.StatusCode.ABORTED, "the trainer refused this message or is closing")
        return reply

    # ---- trainer thread -----------------------------------------------------------------------------
    def _next(self, seconds: float) -> _Event | None:
        """The next event, running the loop for at most ``seconds`` while none is queued."""
        if not self._inbox:
            self._waiter = self._loop.loop.create_future()
            try:
                self._loop.wait(self._waiter, seconds)
            finally:
                self._waiter = None
        return self._inbox.popleft() if self._inbox else None

    def receive(self, timeout: float, alive: Callable[[], str | None] = lambda: None) -> UnityMessageProto:
        """The env's next message. ``alive()`` returns why the env is gone (e.g. its process exited) or None;
        it is polled while waiting, so a crash ends the wait at once rather than after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EnvDisconnected(f"no message from the environment within {timeout:g} s (env.timeout_wait)")
            event = self._next(min(_POLL_S, left))
            if event is None:
                gone = alive()
                if gone:
                    raise EnvDisconnected(gone) from None
                continue
            if event.kind == "disconnected":
                for _ in range(20):  # a killed process closes its socket before it can be reaped: wait a little
                    gone = alive()
                    if gone:
                        break
                    time.sleep(_POLL_S)
                raise EnvDisconnected(gone or event.text)
            if event.kind == "error":
                raise ProtocolError(event.text)
            assert event.call is not None
            message = UnityMessageProto()
            try:
                message.ParseFromString(event.data)
            except DecodeError as exc:
                event.call.answer(None)
                raise ProtocolError(
                    f"the environment sent a malformed message ({len(event.data)} bytes that are not a "
                    f"UnityMessageProto: {exc}); is it an ML-Agents environment?"
                ) from None
            self._pending = event.call
            return message

    def reply(self, message: UnityMessageProto | bytes) -> None:
        """Answer the env's open call (its last message)."""
        if self._pending is None:
            raise ProtocolError("internal: no open call from the environment to answer")
        call, self._pending = self._pending, None
        call.answer(message if isinstance(message, bytes) else message.SerializeToString())
        self._loop.spin()

    @property
    def has_pending(self) -> bool:
        return self._pending is not None

    def drain(self) -> None:
        """Forget a dead env's open call and queued events (before a restart)."""
        if self._pending is not None:
            self._pending.answer(None)
            self._pending = None
        while self._inbox:
            event = self._inbox.popleft()
            if event.call is not None:
                event.call.answer(None)

    def close(self) -> None:
        """Tell the env to quit (header 400 on its open call) and stop listening."""
        if self._closed:
            return
        if self._pending is not None:
            bye = UnityMessageProto()
            bye.header.status = STATUS_CLOSE
            self.reply(bye)
        self._closed = True
        self.drain()
        self._loop.run(self._server.stop(grace=0.5))


class EnvClient:
    """The env's end: calls Exchange on the trainer's server and returns its reply."""

    def __init__(self, port: int, host: str = "localhost", max_message_bytes: int = 2**31 - 1) -> None:
        self.address = f"{host}:{port}"
        self._channel = grpc.insecure_channel(
            self.address,
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )
        self._exchange = self._channel.unary_unary(METHOD, _registered_method=True)
        self.max_message_bytes = max_message_bytes

    def exchange_raw(self, data: bytes, timeout: float | None = None, wait_for_ready: bool = False) -> bytes:
        return self._exchange(data, timeout=timeout, wait_for_ready=wait_for_ready)

    def exchange(
        self, message: UnityMessageProto, timeout: float | None = None, wait_for_ready: bool = False
    ) -> UnityMessageProto:
        data = message.SerializeToString()
        if len(data) > self.max_message_bytes:
            raise ProtocolError(
                f"message of {len(data) / 2**20:.1f} MiB is above the trainer's limit "
                f"({self.max_message_bytes / 2**20:.0f} MiB, env.max_message_mb)"
            )
        reply = UnityMessageProto()
        reply.ParseFromString(self.exchange_raw(data, timeout=timeout, wait_for_ready=wait_for_ready))
        return reply

    def close(self) -> None:
        self._channel.close()
