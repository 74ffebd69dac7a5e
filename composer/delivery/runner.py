"""The send loop: stream the audience, skip who has it, deliver in batches, record every outcome.

Workers (one per transport channel) take batches from a bounded queue, so memory stays flat
however long the list is; SMTP's pool (pool.py) instead pulls recipients one at a time from the
same stream, in this thread. Each batch is marked `sending` before it is handed over and
recorded right after, so a crash leaves at most one batch per worker (one message per SMTP
connection) uncertain: the in-flight window. The next run resends those, and nobody else who
already has the issue. Anything that goes wrong in a worker stops every worker at once and is
raised in the caller's thread: a send never hangs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from composer.audience.suppressions import add_suppressions, utc_today
from composer.delivery.log import (
    FAILED,
    PENDING,
    REFUSED,
    SENT,
    UNKNOWN,
    DeliveryLog,
    Outcome,
    SendRecord,
)
from composer.delivery.plan import SendPlan, check_issue_identity
from composer.delivery.ratelimit import RateLimiter
from composer.delivery.schedule import wait_until
from composer.delivery.transports.base import Envelope, FatalTransportError
from composer.errors import ComposeError, SendAborted, TerminateSignal, UsageError

MAX_FAILURES_SHOWN = 20
_EMPTY: list[Envelope] = []  # "nothing ready right now", as opposed to None, "no more work"
_POLL = 0.1  # seconds between looks at the stop flag while waiting for work


class Reporter:
    """Receives progress; the CLI passes a rich or plain one, tests pass this silent base."""

    def start(self, total: int) -> None:
        """The send begins with `total` messages to deliver."""

    def advance(self, sent: int, failed: int, settled: int = 0) -> None:
        """Some messages were delivered, failed (to retry), or settled (refused, unknown)."""

    def note(self, text: str) -> None:
        """Something the user should know now (an interrupt being honoured, a warning)."""

    def finish(self) -> None:
        """The send is over."""


@dataclass
class SendSummary:
    """What a run did."""

    sent: int = 0
    failed: int = 0  # transiently: a re-run retries them
    refused: int = 0  # for good (5xx for the recipient): never retried
    unknown: int = 0  # accepted or not? not resent unless --retry-unknown
    skipped: int = 0  # already sent in an earlier run
    skipped_unknown: int = 0  # unknown since an earlier run, left alone without --retry-unknown
    suppressed: int = 0
    unsubscribed: int = 0
    bounces_suppressed: int = 0  # hard bounces added to suppressions.csv by this run
    failures: list[tuple[str, str]] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)
    unknowns: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    terminated: bool = False  # by SIGTERM
    stopped: str | None = None  # why the transport gave up, when it did
    elapsed: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def add(self, outcomes: Sequence[Outcome]) -> None:
        """Count outcomes, keeping the first few reasons of each kind."""
        for outcome in outcomes:
            reason = (outcome.email, outcome.error or "no reason given")
            if outcome.state == SENT:
                self.sent += 1
            elif outcome.state == FAILED:
                self.failed += 1
                if len(self.failures) < MAX_FAILURES_SHOWN:
                    self.failures.append(reason)
            elif outcome.state == REFUSED:
                self.refused += 1
                if len(self.refusals) < MAX_FAILURES_SHOWN:
                    self.refusals.append(reason)
            elif outcome.state == UNKNOWN:
                self.unknown += 1
                if len(self.unknowns) < MAX_FAILURES_SHOWN:
                    self.unknowns.append(reason)


class _Run:
    """One run of one send: the shared state of the producer and the workers."""

    def __init__(self, plan: SendPlan, log: DeliveryLog, reporter: Reporter) -> None:
        self.plan, self.log, self.reporter = plan, log, reporter
        self.transport = plan.transport
        self.summary = SendSummary()
        self.stop = threading.Event()  # stop taking work: Ctrl-C, SIGTERM, a fatal error, a crash
        self.produced = threading.Event()  # the producer has queued everything it will
        self.signal: int | None = None  # the first SIGINT or SIGTERM
        self.crash: BaseException | None = None
        self.lock = threading.Lock()
        settings = plan.settings
        self.limiter = RateLimiter(settings.max_per_second, settings.max_per_hour)
        self.batch_size = min(self.transport.batch_size, self.limiter.largest_batch or 10**9)
        self.paced = self.limiter.active  # a pool takes nobody ahead of the rate cap
        self.queue: queue.Queue[list[Envelope]] = queue.Queue(self.transport.concurrency * 2)
        self.streak = 0  # failures in a row, across workers, with nothing sent in between
        self.max_streak = max(25, 5 * self.transport.concurrency * self.transport.batch_size)
        self.wave: dt.datetime | None = None  # --at, waiting send: only readers due at this time
        self._todo: Iterator[Envelope] = iter(())  # a pool's work, one recipient at a time
        self._exhausted = True

    def todo(self) -> Iterator[list[Envelope]]:
        """The audience, streamed, in batches of recipients still to deliver."""
        plan = self.plan
        assert plan.audience is not None
        done = plan.done_states
        for list_name, chunk in plan.audience.chunks():
            if self.stop.is_set():
                return
            keys = [r.key for r in chunk]
            # New rows name the list that reaches them; a row of an earlier send stays.
            added = self.log.enqueue(plan.issue, list_name, keys, self.transport.name)
            # All new (a first send): all pending, nothing to look up.
            states = {} if added == len(keys) else self.log.states(plan.issue, keys)
            if self.wave is not None:
                chunk = [r for r in chunk if plan.when(r) == self.wave]
            todo = [
                plan.reader_envelope(r, list_name) for r in chunk if states.get(r.key) not in done
            ]
            left = [states.get(r.key) for r in chunk if states.get(r.key) in done]
            with self.lock:
                self.summary.skipped += left.count(SENT)
                self.summary.skipped_unknown += left.count(UNKNOWN)
            yield from _batches(todo, self.batch_size)

    def produce(self) -> None:
        """Feed the workers' queue (memory stays flat: the queue is bounded)."""
        for batch in self.todo():
            if not self._put(batch):
                return

    def _put(self, batch: list[Envelope]) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(batch, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def work(self) -> None:
        """One worker: a channel of its own, batches until there are none or the run stops."""
        plan = self.plan
        channel = None
        try:
            channel = self.transport.open_channel()
            batch = self._take(wait=True)
            if batch and self._admit(batch):
                self.log.mark_sending(plan.issue, _marks(batch))
            else:
                batch = None
            while batch:
                if self.stop.is_set():  # marked with the last outcome, but stopping: not sent
                    untried = [Outcome(e.key, PENDING, "not sent: stopped", tries=0) for e in batch]
                    self.log.record(plan.issue, untried)
                    break
                try:
                    outcomes = channel.deliver(batch, self.stop)
                except FatalTransportError as exc:
                    self.fatal(str(exc))
                    self.log.record(plan.issue, [Outcome(e.key, PENDING, str(exc)) for e in batch])
                    break
                # Record this batch and mark the next in one transaction when the next may go
                # now; never hold an outcome back while waiting for work or for the rate cap.
                following = self._take(wait=False)
                marks: list[tuple[str, str]] = []
                if (
                    following
                    and not self.stop.is_set()
                    and self.limiter.try_acquire(len(following))
                ):
                    marks = _marks(following)
                self.log.record(plan.issue, outcomes, marks)
                self._count(outcomes)
                if following is _EMPTY:
                    following = self._take(wait=True)
                if following and not marks:
                    if self._admit(following):
                        self.log.mark_sending(plan.issue, _marks(following))
                    else:
                        following = None  # stopping: it stays pending
                batch = following
        except BaseException as exc:  # stop everyone now; the caller raises it
            with self.lock:
                self.crash = self.crash or exc
            self.stop.set()
        finally:
            if channel is not None:
                with contextlib.suppress(Exception):
                    channel.close()

    def _take(self, wait: bool) -> list[Envelope] | None:
        """The next batch; None when there is no more work or the run is stopping; _EMPTY
        when none is ready now (without `wait`)."""
        while not self.stop.is_set():
            try:
                return self.queue.get(timeout=_POLL) if wait else self.queue.get_nowait()
            except queue.Empty:
                if self.produced.is_set() and self.queue.empty():
                    return None
                if not wait:
                    return _EMPTY
        return None  # stopping: what is still queued stays pending for the next run

    def _admit(self, batch: list[Envelope]) -> bool:
        """Wait for the rate cap to let `batch` go; False when stopping meanwhile."""
        return self.limiter.acquire(len(batch), self.stop) and not self.stop.is_set()

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        sent = sum(1 for o in outcomes if o.state == SENT)
        failed = sum(1 for o in outcomes if o.state == FAILED)
        settled = sum(1 for o in outcomes if o.state in (REFUSED, UNKNOWN))
        # A refusal is about one address, not the server: it does not trip the breaker.
        unknown = sum(1 for o in outcomes if o.state == UNKNOWN)
        with self.lock:
            self.summary.add(outcomes)
            self.streak = 0 if sent else self.streak + failed + unknown
            if self.streak >= self.max_streak and not self.stop.is_set():
                self.summary.stopped = (
                    f"stopped after {self.streak} failures in a row with nothing delivered; "
                    "the rest stay pending for the next run"
                )
                self.stop.set()
        self.reporter.advance(sent, failed, settled)

    def on_signal(self, signum: int, frame: object) -> None:
        """First Ctrl-C or SIGTERM: finish and record what is in flight. Second: stop at once."""
        if self.signal is not None:
            if signum == signal.SIGTERM:
                raise TerminateSignal
            raise KeyboardInterrupt
        self.signal = signum
        self.stop.set()
        what = "terminated" if signum == signal.SIGTERM else "interrupted"
        self.reporter.note(f"{what}: finishing the messages in flight (Ctrl-C again to quit now)")

    def run_waves(self) -> None:
        """Deliver now; or under --at (for a transport that cannot hold mail) wait for each
        reader's time and deliver those due then, wave after wave, until done or stopped."""
        plan = self.plan
        if plan.schedule is None or self.transport.schedules_itself:
            self.run_workers()
            return
        for wave in sorted(plan.waves):
            readers = plan.waves[wave]
            local = wave.astimezone().strftime("%Y-%m-%d %H:%M %Z")
            self.reporter.note(
                f"waiting until {local} for {readers} reader(s); Ctrl-C stops the wait, and "
                "the same command resumes it"
            )
            if not wait_until(wave, self.stop):
                return
            self.wave = wave
            self.produced.clear()
            self.run_workers()
            if self.stop.is_set():
                return

    def run_workers(self) -> None:
        """Deliver what todo() yields: in this thread when the transport drives its connections
        itself (a pool), else producing here while worker threads deliver."""
        pool = self.transport.open_pool(self)
        if pool is not None:
            self._todo = itertools.chain.from_iterable(self.todo())
            self._exhausted = False
            try:
                pool.run()
            except BaseException as exc:  # the caller raises it, after the rest of run_send
                self.crash = exc
                self.stop.set()
            return
        workers = [
            threading.Thread(target=self.work, name=f"send-{n}", daemon=True)
            for n in range(self.transport.concurrency)
        ]
        for worker in workers:
            worker.start()
        try:
            self.produce()
        except BaseException:
            self.stop.set()
            raise
        finally:
            self.produced.set()
            for worker in workers:
                while worker.is_alive():
                    worker.join(_POLL)

    # The pool's feed (composer/delivery/pool.py).

    def take(self) -> Envelope | None:
        """The next recipient, when the rate cap lets one go now."""
        if self._exhausted or not self.limiter.try_acquire(1):
            return None
        envelope = next(self._todo, None)
        self._exhausted = envelope is None
        return envelope

    def exhausted(self) -> bool:
        """No recipient will come from take() again."""
        return self._exhausted or self.stop.is_set()

    def settle(self, outcomes: Sequence[Outcome], marks: Sequence[Envelope]) -> None:
        """Record outcomes and mark the next recipients in one transaction."""
        self.log.record(self.plan.issue, outcomes, _marks(marks))
        if outcomes:
            self._count(outcomes)

    def fatal(self, reason: str) -> None:
        """The transport cannot go on: stop the send, saying why."""
        with self.lock:
            self.summary.stopped = self.summary.stopped or reason
        self.stop.set()


def _batches(todo: list[Envelope], size: int) -> Iterator[list[Envelope]]:
    """`todo` in batches of at most `size`, each of one variant: a request of several readers
    (SendGrid) carries one body, filled per reader."""
    if size > 1:
        todo = sorted(todo, key=_variant)  # stable: the list's order within a variant
    for _, group in itertools.groupby(todo, key=_variant):
        same = list(group)
        for start in range(0, len(same), size):
            yield same[start : start + size]


def _variant(envelope: Envelope) -> int:
    return envelope.fill.variant if envelope.fill is not None else 0


def _marks(batch: Sequence[Envelope]) -> list[tuple[str, str]]:
    """(address, list) of each envelope: what the log marks as in flight."""
    return [(e.key, e.list_name) for e in batch]


@contextlib.contextmanager
def _signal_handler(handler: Callable[[int, object], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, earlier in previous.items():
            signal.signal(number, earlier)


SEND_LOCK = "send.lock"  # one send at a time in a project


def send_running(state_dir: Path) -> bool:
    """Whether a `compose send` holds this project's send lock now (sending, or waiting)."""
    lock = FileLock(str(state_dir / SEND_LOCK))
    try:
        lock.acquire(timeout=0)
    except (Timeout, OSError):
        return True
    lock.release()
    return False


def run_send(plan: SendPlan, reporter: Reporter | None = None) -> SendSummary:
    """Deliver the issue to everyone in the plan who does not have it yet; resumable."""
    reporter = reporter or Reporter()
    state_dir = plan.project.state_dir()
    lock = FileLock(str(state_dir / SEND_LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(
            f"another compose send is running in this project (lock {state_dir / 'send.lock'}); "
            "wait for it to finish"
        ) from None
    except OSError as exc:
        raise SendAborted(f"cannot take the send lock {state_dir / 'send.lock'}: {exc}") from exc
    started = time.monotonic()
    try:
        with DeliveryLog.for_project(state_dir) as log:
            check_issue_identity(log, plan)  # again, now that no other send can start
            run = _Run(plan, log, reporter)
            _note_changes(plan, log, run.summary)
            _suppress_bounces(plan, log, run.summary)  # left by an earlier run that crashed
            audience = plan.audience
            assert audience is not None
            run.summary.suppressed = audience.suppressed
            run.summary.unsubscribed = audience.unsubscribed
            reporter.start(plan.pending)
            try:
                with _signal_handler(run.on_signal):
                    run.run_waves()
            finally:
                reporter.finish()
            if run.crash is None:
                _suppress_bounces(plan, log, run.summary)
    finally:
        lock.release()
    run.summary.interrupted = run.signal == signal.SIGINT
    run.summary.terminated = run.signal == signal.SIGTERM
    run.summary.elapsed = time.monotonic() - started
    if run.crash is not None:
        raise run.crash
    return run.summary


def _suppress_bounces(plan: SendPlan, log: DeliveryLog, summary: SendSummary) -> None:
    """Add the hard bounces in the log to suppressions.csv (once; a crash retries next run)."""
    bounces = log.bounces(plan.issue)
    if not bounces:
        return
    today = utc_today()
    entries = [
        (email, f"hard bounce ({plan.transport.name}: {reply})", today) for email, reply in bounces
    ]
    try:
        summary.bounces_suppressed += add_suppressions(plan.project, entries)
    except (ComposeError, OSError) as exc:
        summary.warnings.append(
            f"could not add {len(bounces)} hard bounce(s) to the suppressions: {exc}; "
            "the next run of this send tries again"
        )
        return
    log.bounces_suppressed(plan.issue, [email for email, _ in bounces])


def _note_changes(plan: SendPlan, log: DeliveryLog, summary: SendSummary) -> None:
    schedule = plan.schedule
    record = SendRecord(
        plan.built.written_subject, plan.built.mode, plan.content_sha, plan.transport.name, plan.segment,
        plan.source, plan.fingerprint, schedule.text if schedule else None,
        schedule.base.timestamp() if schedule else None,
    )  # fmt: skip
    for list_name in plan.list_names:
        earlier = log.begin_send(plan.issue, list_name, record)
        if earlier is not None and earlier.content_sha != record.content_sha:
            summary.warnings.append(
                f"{plan.built.source.name} changed since this send started to {list_name} (was "
                f"{earlier.mode} mode, subject {earlier.subject!r}); readers sent to earlier got "
                "the earlier version"
            )


class _TestCopies:
    """A pool's feed for test copies: each address once, nothing recorded in the log."""

    def __init__(self, envelopes: Sequence[Envelope], summary: SendSummary) -> None:
        self.stop = threading.Event()
        self.paced = False
        self.summary = summary
        self._left = list(reversed(envelopes))

    def take(self) -> Envelope | None:
        return self._left.pop() if self._left else None

    def exhausted(self) -> bool:
        return not self._left

    def settle(self, outcomes: Sequence[Outcome], marks: Sequence[Envelope]) -> None:
        self.summary.add(outcomes)

    def fatal(self, reason: str) -> None:
        self.summary.stopped = reason
        self.stop.set()


def send_tests(plan: SendPlan, envelopes: Sequence[Envelope]) -> SendSummary:
    """Send one copy to each test address; the delivery log is not touched."""
    summary = SendSummary()
    started = time.monotonic()
    pool = plan.transport.open_pool(_TestCopies(envelopes, summary))
    if pool is not None:
        pool.run()
        summary.elapsed = time.monotonic() - started
        return summary
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
