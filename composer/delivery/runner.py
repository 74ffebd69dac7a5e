"""The send loop: stream the audience, skip who has it, deliver in batches, record every outcome.

Workers (one per transport channel) take batches from a bounded queue, so memory stays flat
however long the list is. Each batch is marked `sending` before it is handed over and recorded
right after, so a crash leaves at most one batch per worker uncertain; the next run resends
those, and nobody else who already has the issue.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from filelock import FileLock, Timeout

from composer.delivery.log import FAILED, PENDING, SENT, DeliveryLog, Outcome, SendRecord
from composer.delivery.plan import SendPlan, recipient_chunks
from composer.delivery.ratelimit import RateLimiter
from composer.delivery.transports.base import Envelope, FatalTransportError
from composer.errors import UsageError

MAX_FAILURES_SHOWN = 20
_EMPTY: list[Envelope] = []  # "nothing ready right now", as opposed to None, "no more work"


class Reporter:
    """Receives progress; the CLI passes a rich or plain one, tests pass this silent base."""

    def start(self, total: int) -> None:
        """The send begins with `total` messages to deliver."""

    def advance(self, sent: int, failed: int) -> None:
        """Some messages were delivered or failed."""

    def note(self, text: str) -> None:
        """Something the user should know now (an interrupt being honoured, a warning)."""

    def finish(self) -> None:
        """The send is over."""


@dataclass
class SendSummary:
    """What a run did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0  # already sent in an earlier run
    suppressed: int = 0
    unsubscribed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    stopped: str | None = None  # why the transport gave up, when it did
    elapsed: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def add(self, outcomes: Sequence[Outcome]) -> None:
        """Count outcomes, keeping the first few failure reasons."""
        for outcome in outcomes:
            if outcome.state == SENT:
                self.sent += 1
            elif outcome.state == FAILED:
                self.failed += 1
                if len(self.failures) < MAX_FAILURES_SHOWN:
                    self.failures.append((outcome.email, outcome.error or "unknown error"))


class _Run:
    """One run of one send: the shared state of the producer and the workers."""

    def __init__(self, plan: SendPlan, log: DeliveryLog, reporter: Reporter) -> None:
        self.plan, self.log, self.reporter = plan, log, reporter
        self.transport = plan.transport
        self.summary = SendSummary()
        self.stop = threading.Event()
        self.interrupted = False
        self.crash: BaseException | None = None
        self.lock = threading.Lock()
        settings = plan.settings
        self.limiter = RateLimiter(settings.max_per_second, settings.max_per_hour)
        self.batch_size = min(self.transport.batch_size, self.limiter.largest_batch or 10**9)
        self.queue: queue.Queue[list[Envelope] | None] = queue.Queue(self.transport.concurrency * 2)
        self.streak = 0  # failures in a row, across workers, with nothing sent in between
        self.max_streak = max(25, 5 * self.transport.concurrency * self.transport.batch_size)

    def produce(self) -> None:
        """Stream the audience into batches of not-yet-delivered recipients."""
        plan = self.plan
        assert plan.selection is not None
        for chunk in recipient_chunks(plan.selection):
            if self.stop.is_set():
                return
            keys = [r.key for r in chunk]
            self.log.enqueue(plan.issue, plan.list_name, keys, self.transport.name)
            states = self.log.states(plan.issue, plan.list_name, keys)
            todo = [
                plan.envelope(r.email, r.key, r.name) for r in chunk if states.get(r.key) != SENT
            ]
            with self.lock:
                self.summary.skipped += len(chunk) - len(todo)
            for start in range(0, len(todo), self.batch_size):
                if not self._put(todo[start : start + self.batch_size]):
                    return

    def _put(self, batch: list[Envelope] | None) -> bool:
        while True:
            if batch is not None and self.stop.is_set():
                return False
            try:
                self.queue.put(batch, timeout=0.1)
                return True
            except queue.Full:
                continue

    def work(self) -> None:
        """One worker: a channel of its own, batches until the queue says stop."""
        plan = self.plan
        channel = None
        ended = False  # this worker has taken its sentinel
        try:
            channel = self.transport.open_channel()
            batch = self._take(wait=True)
            ended = batch is None
            if batch and self._admit(batch):
                self.log.mark_sending(plan.issue, plan.list_name, [e.key for e in batch])
            else:
                batch = None
            while batch:
                if self.stop.is_set():  # marked with the last outcome, but stopping: not sent
                    untried = [Outcome(e.key, PENDING, "not sent: stopped", tries=0) for e in batch]
                    self.log.record(plan.issue, plan.list_name, untried)
                    break
                try:
                    outcomes = channel.deliver(batch, self.stop)
                except FatalTransportError as exc:
                    pending = [Outcome(e.key, PENDING, str(exc)) for e in batch]
                    self.log.record(plan.issue, plan.list_name, pending)
                    with self.lock:
                        self.summary.stopped = self.summary.stopped or str(exc)
                    self.stop.set()
                    break
                # Record this batch and mark the next in one transaction when the next may go
                # now; never hold an outcome back while waiting for work or for the rate cap.
                following = self._take(wait=False)
                keys: list[str] = []
                if following and self.limiter.try_acquire(len(following)):
                    keys = [e.key for e in following]
                ready = bool(keys)
                self.log.record(plan.issue, plan.list_name, outcomes, keys)
                self._count(outcomes)
                if following is _EMPTY:
                    following = self._take(wait=True)
                ended = following is None
                if following and not ready:
                    if not self._admit(following):
                        following = None
                    else:
                        self.log.mark_sending(
                            plan.issue, plan.list_name, [e.key for e in following]
                        )
                batch = following
        except BaseException as exc:  # a bug: stop everyone, keep the log consistent, re-raise
            with self.lock:
                self.crash = self.crash or exc
            self.stop.set()
        finally:
            if channel is not None:
                channel.close()
            while not ended:  # consume this worker's sentinel so the producer can finish
                ended = self.queue.get() is None

    def _take(self, wait: bool) -> list[Envelope] | None:
        """The next batch; None when the queue says stop; _EMPTY when none is ready (no wait)."""
        while True:
            try:
                batch = self.queue.get() if wait else self.queue.get_nowait()
            except queue.Empty:
                return _EMPTY
            if batch is None or not self.stop.is_set():
                return batch
            # Stopping: skip the rest; they stay pending for the next run.

    def _admit(self, batch: list[Envelope]) -> bool:
        """Wait for the rate cap to let `batch` go; False when stopping meanwhile."""
        return self.limiter.acquire(len(batch), self.stop) and not self.stop.is_set()

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        sent = sum(1 for o in outcomes if o.state == SENT)
        failed = sum(1 for o in outcomes if o.state == FAILED)
        with self.lock:
            self.summary.add(outcomes)
            self.streak = 0 if sent else self.streak + failed
            if self.streak >= self.max_streak and not self.stop.is_set():
                self.summary.stopped = (
                    f"stopped after {self.streak} failures in a row with nothing delivered; "
                    "the rest stay pending for the next run"
                )
                self.stop.set()
        self.reporter.advance(sent, failed)

    def on_sigint(self, signum: int, frame: object) -> None:
        """First Ctrl-C: finish and record what is in flight. Second: stop at once."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.stop.set()
        self.reporter.note(
            "interrupted: finishing the messages in flight (Ctrl-C again to quit now)"
        )


@contextlib.contextmanager
def _signal_handler(handler: Callable[[int, object], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_send(plan: SendPlan, reporter: Reporter | None = None) -> SendSummary:
    """Deliver the issue to everyone in the plan who does not have it yet; resumable."""
    reporter = reporter or Reporter()
    state_dir = plan.project.state_dir()
    lock = FileLock(str(state_dir / "send.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(
            f"another compose send is running in this project (lock {state_dir / 'send.lock'}); "
            "wait for it to finish"
        ) from None
    started = time.monotonic()
    try:
        with DeliveryLog.for_project(state_dir) as log:
            run = _Run(plan, log, reporter)
            _note_changes(plan, log, run.summary)
            selection = plan.selection
            assert selection is not None
            run.summary.suppressed = selection.suppressed
            run.summary.unsubscribed = selection.unsubscribed
            reporter.start(plan.pending)
            with _signal_handler(run.on_sigint):
                workers = [
                    threading.Thread(target=run.work, name=f"send-{n}", daemon=True)
                    for n in range(run.transport.concurrency)
                ]
                for worker in workers:
                    worker.start()
                try:
                    run.produce()
                finally:
                    for _ in workers:
                        run._put(None)
                    for worker in workers:
                        while worker.is_alive():
                            worker.join(0.2)
            reporter.finish()
    finally:
        lock.release()
    run.summary.interrupted = run.interrupted
    run.summary.elapsed = time.monotonic() - started
    if run.crash is not None:
        raise run.crash
    return run.summary


def _note_changes(plan: SendPlan, log: DeliveryLog, summary: SendSummary) -> None:
    record = SendRecord(
        plan.built.subject, plan.built.mode, plan.content_sha, plan.transport.name, plan.segment
    )
    earlier = log.begin_send(plan.issue, plan.list_name, record)
    if earlier is not None and earlier.content_sha != record.content_sha:
        summary.warnings.append(
            f"{plan.built.source.name} changed since this send started (was {earlier.mode} "
            f"mode, subject {earlier.subject!r}); readers sent to earlier got the earlier version"
        )


def send_tests(plan: SendPlan, envelopes: Sequence[Envelope]) -> SendSummary:
    """Send one copy to each test address; the delivery log is not touched."""
    summary = SendSummary()
    started = time.monotonic()
    channel = plan.transport.open_channel()
    stop = threading.Event()
    try:
        for envelope in envelopes:
            try:
                summary.add(channel.deliver([envelope], stop))
            except FatalTransportError as exc:
                summary.stopped = str(exc)
                break
    finally:
        channel.close()
    summary.elapsed = time.monotonic() - started
    return summary
