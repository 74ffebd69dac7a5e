"""The pool (composer/delivery/pool.py) over real sockets: a connection that cannot be written to
holds up no other, and SMTP's writes wait for room instead of blocking the one thread.

Over loopback Linux grows a socket's send buffer to megabytes, so a whole send never fills one;
these tests give the writing socket a small buffer (as a fresh connection over a slow network
has) and a peer that does not read.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from doubles.delivery_project import make_project

from composer.delivery.log import Outcome
from composer.delivery.plan import plan_send
from composer.delivery.pool import READ, WRITE, Pool, Talk
from composer.delivery.transports.base import Envelope
from composer.delivery.transports.smtp import SMTPConversation, SMTPTransport, _SentThenLost
from composer.project import load_project

BIG = b"x" * 2_000_000  # far more than a 4 KB send buffer and the peer's receive buffer hold


class NoWork:
    """A feed with nothing to send: the conversations below bring their own bytes."""

    paced = False

    def __init__(self) -> None:
        self.stop = threading.Event()

    def take(self) -> Envelope | None:
        return None

    def exhausted(self) -> bool:
        return True

    def settle(self, outcomes: Sequence[Outcome], marks: Sequence[Envelope]) -> None:
        raise AssertionError("nothing to settle")

    def fatal(self, reason: str) -> None:
        raise AssertionError(reason)


class Writer:
    """Writes its bytes without blocking (WRITE when the socket is full), then waits for one
    reply; notes when each happened in `events`."""

    primed = None

    def __init__(self, name: str, sock: socket.socket, data: bytes, events: list[str]) -> None:
        self.name, self.sock, self.data, self.events = name, sock, data, events
        self.sock.setblocking(False)
        self._replies: deque[tuple[int, bytes] | BaseException] = deque()

    def talk(self) -> Talk:
        view = memoryview(self.data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                yield WRITE
        self.events.append(f"{self.name} written")
        code, _ = yield READ
        self.events.append(f"{self.name} answered {code}")

    def receive(self, data: bytes) -> None:
        self._replies.append((250, data) if data else ConnectionError("closed"))

    def reply(self) -> tuple[int, bytes] | BaseException | None:
        return self._replies.popleft() if self._replies else None

    def close(self) -> None:
        self.sock.close()


def pair(send_buffer: int | None = None) -> tuple[socket.socket, socket.socket]:
    ours, peer = socket.socketpair()
    if send_buffer is not None:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    return ours, peer


def serve(peer: socket.socket, size: int, wait_for: threading.Event | None = None) -> None:
    """Read `size` bytes (once `wait_for` is set), then answer."""
    if wait_for is not None:
        wait_for.wait(30)
    left = size
    while left > 0:
        left -= len(peer.recv(1 << 20))
    peer.sendall(b"250 OK\r\n")


def test_a_connection_that_cannot_be_written_to_holds_up_no_other() -> None:
    events: list[str] = []
    stuck, stuck_peer = pair(send_buffer=4096)
    free, free_peer = pair()
    others_done = threading.Event()
    slow = threading.Thread(target=serve, args=(stuck_peer, len(BIG), others_done))
    quick = threading.Thread(target=serve, args=(free_peer, 1000))
    slow.start()
    quick.start()

    class Watching(Writer):
        def talk(self) -> Talk:
            yield from super().talk()
            others_done.set()  # only now does the stuck one's peer start reading

    pool = Pool(NoWork(), timeout=30)
    pool.add([Writer("stuck", stuck, BIG, events), Watching("free", free, b"y" * 1000, events)])
    pool.run()
    slow.join(30)
    quick.join(30)
    # The free connection wrote and got its answer while the stuck one waited for room.
    assert events == ["free written", "free answered 250", "stuck written", "stuck answered 250"]


@pytest.fixture
def conversation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPConversation]:
    monkeypatch.setenv("COMPOSE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("COMPOSE_SMTP_PORT", "2525")  # never connected to: the socket is ours
    project = make_project(tmp_path, 1, transport="smtp")
    plan = plan_send(load_project(project), project / "issues" / "x.yaml", "main")
    assert isinstance(plan.transport, SMTPTransport)
    feed = NoWork()
    conv = SMTPConversation(plan.transport, Pool(feed, timeout=30), feed.stop)
    yield conv
    if conv.sock is not None:
        conv.sock.close()


def test_smtp_writes_wait_for_room_and_send_everything(conversation: SMTPConversation) -> None:
    ours, peer = pair(send_buffer=4096)
    ours.setblocking(False)
    conversation.sock = ours
    writing = conversation._send(BIG, b"MAIL FROM:<a@example.org>\r\n")
    assert next(writing) is WRITE  # full: the thread is free for the other connections
    received = bytearray()
    peer.setblocking(False)
    with pytest.raises(StopIteration):
        while True:
            try:
                received += peer.recv(1 << 20)
            except BlockingIOError:
                pass
            writing.send(None)  # the pool resumes it when the socket has room
    received += peer.recv(1 << 20)
    assert bytes(received) == BIG + b"MAIL FROM:<a@example.org>\r\n"
    peer.close()


def test_a_line_broken_after_the_final_dot_is_told_apart(conversation: SMTPConversation) -> None:
    # Everything of the message went, the next recipient's commands did not: the message may
    # have been delivered (unknown), never resent as if nothing went.
    ours, peer = pair(send_buffer=4096)
    ours.setblocking(False)
    conversation.sock = ours
    message = b"x" * 1000 + b"\r\n.\r\n"
    writing = conversation._send(message, b"y" * 2_000_000)
    assert next(writing) is WRITE
    assert peer.recv(len(message), socket.MSG_WAITALL) == message
    peer.close()
    with pytest.raises(_SentThenLost):
        while True:
            writing.send(None)
    # Before the message is all out, a broken line is an ordinary error: nothing was accepted.
    ours, peer = pair(send_buffer=4096)
    ours.setblocking(False)
    conversation.sock = ours
    writing = conversation._send(BIG, b"MAIL FROM:<a@example.org>\r\n")
    assert next(writing) is WRITE
    peer.close()
    with pytest.raises(OSError) as raised:
        while True:
            writing.send(None)
    assert not isinstance(raised.value, _SentThenLost)
