"""One thread drives every connection of a send, each connection's conversation a generator.

Worker threads, one a connection, spent most of a send handing the GIL to each other and
waiting for one another's commits (benchmarks/README.md, "Now: one thread drives every
connection"). Here the conversations take turns in one thread: each runs until it waits for a
reply, for room to write, for work, for a commit or for its backoff, and tells the loop so by
what it yields. The loop reads whatever the server answered on any connection, and commits the
outcomes and marks that every conversation asked for in one round, in one transaction, before
any of them goes on: a message's content still never leaves before its `sending` mark is
committed.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple, Protocol

from composer.delivery.log import Outcome
from composer.delivery.transports.base import Envelope

READ = "read"  # -> the next reply: (code, text); a broken line is raised at the yield
WRITE = "write"  # -> None once the socket has room again (no connection waits for another's)
TAKE = "take"  # -> the next envelope, waiting for one if need be; None: no more work
TAKE_NOW = "take-now"  # -> the next envelope if one may go right now, else None


class Commit(NamedTuple):
    """-> None once these outcomes are recorded and these envelopes marked `sending`."""

    outcomes: Sequence[Outcome]
    marks: Sequence[Envelope]


class Sleep(NamedTuple):
    """-> True after `seconds`; False at once when the send is stopping."""

    seconds: float


class Fatal(NamedTuple):
    """-> None: nothing more can go through this transport; the send stops."""

    reason: str


Request = str | Commit | Sleep | Fatal
Talk = Generator[Request, Any, None]

_RECV = 262_144  # the most one read takes
_POLL = 0.1  # seconds between looks at the stop flag while nothing else happens
_RATE_POLL = 0.01  # while a conversation waits for the rate cap


class Feed(Protocol):
    """Where the work comes from and where its outcomes go (the runner, or the test copies)."""

    stop: threading.Event
    paced: bool  # a rate cap says when each envelope may go: none is taken ahead

    def take(self) -> Envelope | None:
        """The next envelope if it may go now; None when there is none now."""

    def exhausted(self) -> bool:
        """Whether no envelope will ever come from take() again (or the send is stopping)."""

    def settle(self, outcomes: Sequence[Outcome], marks: Sequence[Envelope]) -> None:
        """Record the outcomes and mark the envelopes as in flight, in one commit."""

    def fatal(self, reason: str) -> None:
        """Stop the send: the transport cannot go on."""


class Conversation(Protocol):
    """One connection: what the loop reads for it, and the generator that talks on it."""

    sock: socket.socket | None  # None while not connected
    primed: Envelope | None  # taken, not marked: the loop waits for it before calling it a day

    def talk(self) -> Talk:
        """The connection's whole life: yields requests, ends when there is no more work."""

    def receive(self, data: bytes) -> None:
        """Bytes from the server (b"": it closed the connection)."""

    def reply(self) -> tuple[int, bytes] | BaseException | None:
        """The next whole reply read, an error to raise in talk(), or None: none yet."""

    def close(self) -> None:
        """Let go of the connection now (the send ended or crashed)."""


class Pool:
    """Runs conversations to the end in this thread; see the module's docstring."""

    def __init__(
        self,
        feed: Feed,
        timeout: float,
        *,
        prepare: Callable[[Envelope], None] | None = None,
        ahead: int = 0,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.feed = feed
        # `prepare` is told of each envelope `ahead` envelopes before a conversation takes it
        # (so that its message can be made on another thread meanwhile).
        self.prepare = prepare
        self.ahead = 0 if feed.paced or prepare is None else ahead
        self.upcoming: deque[Envelope] = deque()
        self.on_close = on_close  # once every connection is closed
        self.timeout = timeout  # seconds a reply may take
        self.returned: deque[Envelope] = deque()  # taken ahead, then given back unmarked
        self._talks: dict[Conversation, Talk] = {}
        self._ready: deque[tuple[Conversation, Any]] = deque()
        self._reading: dict[Conversation, float] = {}  # -> when its reply is overdue
        self._writing: dict[Conversation, float] = {}  # -> when its write is overdue
        self._sleeping: dict[Conversation, float] = {}  # -> when it wakes
        self._taking: list[Conversation] = []
        self._commits: list[tuple[Conversation, Commit]] = []
        self._watched: dict[Conversation, socket.socket] = {}
        self._selector = selectors.DefaultSelector()

    def add(self, conversations: Sequence[Conversation]) -> None:
        """Conversations to run (they may need the pool to exist: give_back)."""
        for conv in conversations:
            self._talks[conv] = conv.talk()
            self._ready.append((conv, None))

    def give_back(self, envelope: Envelope) -> None:
        """An envelope taken ahead whose commands were abandoned: the next taker gets it."""
        self.returned.append(envelope)

    def run(self) -> None:
        """Until every conversation has ended; closes every connection however it ends."""
        try:
            while self._talks:
                self._step()
                if self._ready:
                    continue
                if self._commits:
                    self._commit()
                    continue
                self._offer_work()
                if not self._ready and self._talks:
                    self._wait()
        finally:
            for conv in list(self._talks):
                conv.close()
            self._selector.close()
            if self.on_close is not None:
                self.on_close()

    def _step(self) -> None:
        """Let each ready conversation go on until it waits for something."""
        ready, talks = self._ready, self._talks
        while ready:
            conv, value = ready.popleft()
            talk = talks[conv]
            try:
                if isinstance(value, BaseException):
                    request = talk.throw(value)
                else:
                    request = talk.send(value)
            except StopIteration:
                del talks[conv]
                self.unwatch(conv)
                continue
            if request is READ:
                self._read(conv)
            elif request is WRITE:
                self._write(conv)
            elif request is TAKE_NOW:
                ready.append((conv, self._take()))
            elif request is TAKE:
                self._taking.append(conv)
            elif isinstance(request, Commit):
                self._commits.append((conv, request))
            elif isinstance(request, Sleep):
                self._sleeping[conv] = time.monotonic() + request.seconds
            elif isinstance(request, Fatal):
                self.feed.fatal(request.reason)
                ready.append((conv, None))
            else:  # pragma: no cover - a conversation's bug
                raise TypeError(f"unknown request {request!r}")

    def _read(self, conv: Conversation) -> None:
        reply = conv.reply()
        if reply is not None:
            self._ready.append((conv, reply))
            return
        if self._watch(conv, selectors.EVENT_READ):
            self._reading[conv] = time.monotonic() + self.timeout

    def _write(self, conv: Conversation) -> None:
        if self._watch(conv, selectors.EVENT_READ | selectors.EVENT_WRITE):
            self._writing[conv] = time.monotonic() + self.timeout

    def _watch(self, conv: Conversation, events: int) -> bool:
        """Have the selector report these events of conv's socket; False (and the conversation
        told) when it is not connected."""
        sock = conv.sock
        if sock is None:
            self._ready.append((conv, ConnectionError("not connected")))
            return False
        if self._watched.get(conv) is not sock:
            self.unwatch(conv)
            self._selector.register(sock, events, conv)
            self._watched[conv] = sock
        elif self._selector.get_key(sock).events != events:
            self._selector.modify(sock, events, conv)
        return True

    def unwatch(self, conv: Conversation) -> None:
        sock = self._watched.pop(conv, None)
        if sock is not None:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError, OSError):
                pass

    def _take(self) -> Envelope | None:
        if self.feed.stop.is_set():
            return None
        if self.returned:
            return self.returned.popleft()
        if not self.ahead or self.prepare is None:
            return self.feed.take()
        while len(self.upcoming) <= self.ahead and (envelope := self.feed.take()) is not None:
            self.upcoming.append(envelope)
            self.prepare(envelope)
        return self.upcoming.popleft() if self.upcoming else None

    def _commit(self) -> None:
        commits, self._commits = self._commits, []
        outcomes = [o for _, commit in commits for o in commit.outcomes]
        marks = [e for _, commit in commits for e in commit.marks]
        self.feed.settle(outcomes, marks)
        self._ready.extend((conv, None) for conv, _ in commits)

    def _offer_work(self) -> None:
        """Hand waiting takers an envelope, or None once none can come (another conversation
        may still give back the one it took ahead: they wait for that)."""
        if not self._taking:
            return
        waiting = []
        for conv in self._taking:
            envelope = self._take()
            if envelope is not None:
                self._ready.append((conv, envelope))
            elif self.feed.stop.is_set() or (
                self.feed.exhausted() and not any(c.primed for c in self._talks)
            ):
                self._ready.append((conv, None))
            else:
                waiting.append(conv)
        self._taking = waiting

    def _wait(self) -> None:
        """Block until a reply comes, a reply is overdue, a backoff ends or work may go."""
        now = time.monotonic()
        deadline = now + _POLL
        if self._reading:
            deadline = min(deadline, min(self._reading.values()))
        if self._writing:
            deadline = min(deadline, min(self._writing.values()))
        if self._sleeping:
            deadline = min(deadline, min(self._sleeping.values()))
        if self._taking:
            deadline = min(deadline, now + _RATE_POLL)
        events = self._selector.select(max(deadline - now, 0.0))
        for key, mask in events:
            conv = key.data
            if mask & selectors.EVENT_READ:
                self._receive(conv, key.fileobj)  # type: ignore[arg-type]
            if mask & selectors.EVENT_WRITE and self._writing.pop(conv, None) is not None:
                self._watch(conv, selectors.EVENT_READ)
                self._ready.append((conv, None))
        now = time.monotonic()
        for conv, due in list(self._writing.items()):
            if due <= now:
                del self._writing[conv]
                self._ready.append((conv, TimeoutError("timed out writing to the server")))
        for conv, due in list(self._reading.items()):
            reply = conv.reply()
            if reply is not None:
                del self._reading[conv]
                self._ready.append((conv, reply))
            elif due <= now:
                del self._reading[conv]
                self._ready.append((conv, TimeoutError("timed out waiting for the server")))
        stopping = self.feed.stop.is_set()
        for conv, due in list(self._sleeping.items()):
            if stopping or due <= now:
                del self._sleeping[conv]
                self._ready.append((conv, not stopping))

    def _receive(self, conv: Conversation, sock: socket.socket) -> None:
        try:
            data = sock.recv(_RECV)
            if isinstance(sock, ssl.SSLSocket):
                while data and sock.pending():
                    data += sock.recv(_RECV)
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            return  # part of a TLS record: the rest comes
        except OSError:
            data = b""
        if not data:
            self.unwatch(conv)  # closed: nothing more to wait for on it
            if self._writing.pop(conv, None) is not None:
                self._ready.append((conv, None))  # its next write says how
        conv.receive(data)
