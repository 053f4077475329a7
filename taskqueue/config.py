"""Queue strategies as configuration.

A :class:`QueueConfig` is a frozen value: workloads build one per strategy they compare and the
manifest records it as a plain dict (:meth:`QueueConfig.to_dict`). Strings in the CLI form
``key=value,key=value`` are parsed by :meth:`QueueConfig.parse`, with errors that list the
valid choices.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from runs import keyvalue

from .errors import InvalidArgumentError


class ConnectionMode(StrEnum):
    """How engines in one process reach SQLite."""

    SHARED = "shared"
    """One connection (one writer) per process; every engine's calls queue on its thread."""
    PER_WORKER = "per-worker"
    """One connection per worker name; writers contend on SQLite's lock."""


class Dispatch(StrEnum):
    """Which thread runs a queue operation's statements."""

    THREAD = "thread"
    """Always the connection's aiosqlite thread: one round trip, a thread wake-up each way,
    per operation; SQL may overlap Python running on the event loop."""
    INLINE = "inline"
    """Every operation on the event loop's own thread while the connection thread has
    nothing in flight; the loop is blocked while the statements run, however many rows."""
    AUTO = "auto"
    """Inline for operations of at most ``INLINE_ROWS_MOST`` rows (a status read, an enqueue,
    a claim with its acks), the connection thread for bigger ones and for counts and lease
    sweeps, whose size is unbounded.

    Inline dispatch needs ``busy_timeout_ms=0`` (the default): a locked database then fails
    at once into the queue's retry loop, which waits on the event loop, instead of blocking
    it inside SQLite. With a busy timeout set, or ``claim_style=deferred``, every operation
    goes to the thread."""


class ClaimStyle(StrEnum):
    """How a claim picks and takes tasks."""

    RETURNING = "returning"
    """One ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING`` statement."""
    IMMEDIATE = "immediate"
    """``BEGIN IMMEDIATE``; select; update; commit, in one trip to the connection thread."""
    DEFERRED = "deferred"
    """The naive read-then-write, one await per statement. Kept to show SQLITE_BUSY."""


class PgClaim(StrEnum):
    """How a claim on the PostgreSQL backend locks the rows it picks."""

    SKIP_LOCKED = "skip-locked"
    """``SELECT ... FOR UPDATE SKIP LOCKED``: concurrent claims pass over each other's rows."""
    FOR_UPDATE = "for-update"
    """The naive ``FOR UPDATE``: a claim waits for the rows another one locked, finds them
    taken and reads on past them, so concurrent claims queue on each other's locks. Kept to
    show the lock waits."""


class PgClaimCommit(StrEnum):
    """Whether a claim on the PostgreSQL backend waits for its commit's WAL flush."""

    ASYNC = "async"
    """The claim commits with ``synchronous_commit = off`` for its own transaction (set in
    the claim statement itself): it does not wait for the WAL flush. A server crash may
    forget a claim made just before it; the task is then pending again and another claim
    takes it, and the first worker's ack is refused because it names the forgotten claim's
    token (the handler ran twice: at least once, as after a lease expiry). Enqueues, acks
    and fails still wait for the flush, and a flush writes the claims before them."""
    SESSION = "session"
    """Claims commit as the session's ``pg_synchronous_commit`` says (with ``on``, a WAL
    flush per claim)."""


class PgAcks(StrEnum):
    """How a worker engine's acks travel with its claims on the PostgreSQL backend.

    On the 2-core reference machine, loaded by other work, ``ride`` gave the shortest claim
    tail of the three (docs/postgres.md): the other two send two statements where it sends
    one, and there the tail is the wait for a CPU, not the WAL flush the acks add."""

    RIDE = "ride"
    """Acks and claim in ONE statement (``complete_and_claim``): one round trip and one
    atomic commit, which waits for the WAL flush because of the acks."""
    PARALLEL = "parallel"
    """The acks go in a statement of their own on a second connection while the claim runs
    on the first (with ``pg_claim_commit=async``, a claim that does not wait for the WAL
    flush): the engine waits for the longer of the two, not for both in series. Each
    commits on its own: a claim that fails after its acks landed leaves the acks done, and
    acks that fail after the claim landed leave its tasks leased until the lease ends, when
    the sweep returns them (nothing is lost, as after a worker that died)."""
    BEHIND = "behind"
    """The engine hands its acks to a write of their own that it does not wait for, and
    claims at once: its claims carry no acks and, with ``pg_claim_commit=async``, wait for
    no flush. A task counts as completed when its ack's write has committed (flushed). One
    write per engine is in flight at a time: acks finished meanwhile wait for the next one.
    The engine waits for the write in flight only before a claim while a full ``ack_batch``
    waits, before it idles or checks whether the queue is drained, and when it stops."""


SYNCHRONOUS_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")
"""PostgreSQL's ``synchronous_commit`` settings (``pg_synchronous_commit``)."""


@dataclass(frozen=True, slots=True)
class Wakeup:
    """How an idle worker learns there is new work.

    ``notify``: in-process notification from ``enqueue``, with ``interval_ms`` as the fallback
    for work that arrives from other processes or becomes due later. ``poll``: sleep
    ``interval_ms`` between empty claims.
    """

    mode: str = "notify"
    interval_ms: float = 50.0

    @classmethod
    def parse(cls, text: str) -> Wakeup:
        """Parse ``notify``, ``notify:<ms>`` or ``poll:<ms>``."""
        mode, _, ms = text.partition(":")
        if mode not in ("notify", "poll"):
            raise InvalidArgumentError(
                f"wakeup {text!r}: unknown mode {mode!r}; "
                "use 'notify', 'notify:<ms>' or 'poll:<ms>'"
            )
        if not ms:
            if mode == "poll":
                raise InvalidArgumentError(
                    f"wakeup {text!r}: poll needs an interval, e.g. 'poll:10' (milliseconds)"
                )
            return cls(mode)
        try:
            interval = float(ms)
        except ValueError:
            raise InvalidArgumentError(
                f"wakeup {text!r}: interval {ms!r} is not a number of milliseconds"
            ) from None
        if not (math.isfinite(interval) and interval > 0):
            raise InvalidArgumentError(f"wakeup {text!r}: interval must be > 0 ms, a finite number")
        return cls(mode, interval)

    def __str__(self) -> str:
        return f"{self.mode}:{self.interval_ms:g}"


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Every strategy knob of the queue. Defaults are the fastest safe strategy."""

    connection: ConnectionMode = ConnectionMode.SHARED
    dispatch: Dispatch = Dispatch.AUTO
    """Which thread runs an operation's SQL: ``auto`` runs short ones on the event loop while
    the connection thread is idle, saving the two thread wake-ups of a round trip (see
    :class:`Dispatch`)."""
    claim_style: ClaimStyle = ClaimStyle.RETURNING
    claim_batch: int = 100
    """The most tasks a worker engine claims per call (see ``claim_budget_ms``)."""
    ack_batch: int = 100
    """Completions a worker engine buffers before writing them in one statement; the acks
    left when its claimed tasks run out ride on its next claim."""
    claim_budget_ms: float = 10.0
    """How much work, in milliseconds, an engine claims at once: each claim takes
    ``budget / (time per task x engines on this queue)`` tasks, from 1 to ``claim_batch``,
    with the time per task measured by the engine as it runs. Cheap tasks are claimed in
    full batches (one round trip per batch); slow ones a few at a time, so a claim never
    holds tasks other workers or processes could run, buffered tasks stay well inside their
    lease, and engines sharing one event loop wait at most about this long for each other.
    0 turns sizing off: every claim asks for ``claim_batch``."""
    turn_ms: float = 2.0
    """The longest a run of calls that complete inline keeps the event loop before the next
    one gives it away (timers, signal handlers and other engines run within a turn plus one
    call). 0 never gives it away: only for a measurement that must run in one step of its
    coroutine, such as the instruction gate's, where no other task waits for the loop."""
    wakeup: Wakeup = field(default_factory=Wakeup)
    lease_s: float = 30.0
    """How long a claim holds a task before another worker may reclaim it."""
    busy_timeout_ms: int = 0
    """SQLite's own busy handler. 0 hands contention to the queue's retry loop, which sleeps
    on the event loop (not on the connection thread) in steps of at most ``busy_backoff_max_ms``."""
    busy_backoff_max_ms: float = 2.0
    busy_deadline_s: float = 30.0
    """After this long busy, an operation raises :class:`QueueBusyError`."""
    retry_backoff_s: float = 0.5
    """Delay before the first retry of a failed task; doubles per attempt."""
    retry_backoff_max_s: float = 300.0
    cpu_affinity: str = "off"
    """``off``; ``colocate``: pin the opening thread (the event loop) and, by inheritance, its
    connection threads to one CPU, so each round trip wakes a thread on the same core (about
    2x faster per trip on the reference VM) at the cost of SQL no longer overlapping Python
    on another core; ``cpu:N``: the same, on CPU N. The previous affinity is restored on close."""
    record_timings: bool = False
    """Time every queue operation with ``perf_counter_ns`` (see :class:`QueueStats`)."""
    capture_sql: bool = False
    """Record each SQL statement with its duration measured on the connection thread."""
    backend: str = "sqlite"
    """Where workloads put their queue databases: ``sqlite`` (files in the run's scratch
    folder) or a ``postgresql://`` URL of a server, on which each database is a fresh scratch
    database, dropped after the run. (A :class:`TaskQueue` itself goes by the path or URL it
    is given.) The fields below starting ``pg_`` apply to PostgreSQL only."""
    pg_claim: PgClaim = PgClaim.SKIP_LOCKED
    pg_pool: int = 10
    """The most connections one queue object opens (engines on one event loop claim on
    connections of their own, concurrently, up to this many)."""
    pg_claim_commit: PgClaimCommit = PgClaimCommit.ASYNC
    """Claims without a ride-along ack commit without waiting for the WAL flush (``async``)
    or as the session commits (``session``): see :class:`PgClaimCommit`."""
    pg_acks: PgAcks = PgAcks.RIDE
    """An engine's acks in its next claim's own statement (``ride``), beside it on a second
    connection (``parallel``), or written behind the claims without waiting for them
    (``behind``): see :class:`PgAcks`."""
    pg_synchronous_commit: str = "on"
    """``synchronous_commit`` of the queue's sessions: ``off`` trades the last moments of
    commits on a server crash for not waiting on the WAL flush."""
    pg_activity_ms: float = 20.0
    """How often a workload run samples ``pg_stat_activity`` for its databases' sessions
    (wait events by operation, ``pg-activity.json``), on a connection of its own; 0 does
    not sample. One poll costs the server well under a millisecond."""

    def __post_init__(self) -> None:
        # Accept plain strings for the enums so dataclasses.replace(cfg, connection="shared")
        # and dicts loaded from JSON work; reject anything else with the valid choices.
        object.__setattr__(self, "connection", _enum(ConnectionMode, "connection", self.connection))
        object.__setattr__(self, "claim_style", _enum(ClaimStyle, "claim_style", self.claim_style))
        object.__setattr__(self, "dispatch", _enum(Dispatch, "dispatch", self.dispatch))
        object.__setattr__(self, "pg_claim", _enum(PgClaim, "pg_claim", self.pg_claim))
        object.__setattr__(
            self, "pg_claim_commit", _enum(PgClaimCommit, "pg_claim_commit", self.pg_claim_commit)
        )
        object.__setattr__(self, "pg_acks", _enum(PgAcks, "pg_acks", self.pg_acks))
        check_backend(self.backend)
        if self.pg_synchronous_commit not in SYNCHRONOUS_COMMIT:
            raise InvalidArgumentError(
                f"pg_synchronous_commit={self.pg_synchronous_commit!r}: choose one of "
                + ", ".join(SYNCHRONOUS_COMMIT)
            )
        pool = self.pg_pool
        if not isinstance(pool, int) or isinstance(pool, bool) or not 1 <= pool <= 100:
            raise InvalidArgumentError(f"pg_pool={pool!r}: must be a whole number 1..100")
        if isinstance(self.wakeup, str):
            object.__setattr__(self, "wakeup", Wakeup.parse(self.wakeup))
        for name in ("claim_batch", "ack_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10_000:
                raise InvalidArgumentError(f"{name}={value!r}: must be a whole number 1..10000")
        # Finite numbers only: nan passes no comparison and inf every upper one, and either
        # fails deep inside a run (lease arithmetic, sleeps) instead of here.
        positive = ("lease_s", "busy_backoff_max_ms", "busy_deadline_s", "retry_backoff_max_s")
        if not _finite(self.turn_ms) or self.turn_ms < 0:
            raise InvalidArgumentError(
                f"turn_ms={self.turn_ms!r}: must be >= 0, a finite number (0: never give way)"
            )
        if not _finite(self.pg_activity_ms) or not (
            self.pg_activity_ms == 0 or 1 <= self.pg_activity_ms <= 10_000
        ):
            raise InvalidArgumentError(
                f"pg_activity_ms={self.pg_activity_ms!r}: must be 0 (no sampling) or a number "
                "of milliseconds 1..10000"
            )
        if not _finite(self.claim_budget_ms) or self.claim_budget_ms < 0:
            raise InvalidArgumentError(
                f"claim_budget_ms={self.claim_budget_ms!r}: must be >= 0, a finite number "
                "(0: claim_batch always)"
            )
        for name in positive:
            if not _finite(getattr(self, name)) or not getattr(self, name) > 0:
                raise InvalidArgumentError(
                    f"{name}={getattr(self, name)!r}: must be > 0, a finite number"
                )
        parse_affinity(self.cpu_affinity)
        if not _finite(self.retry_backoff_s) or self.retry_backoff_s < 0:
            raise InvalidArgumentError(
                f"retry_backoff_s={self.retry_backoff_s!r}: must be >= 0, a finite number"
            )
        # SQLite takes the busy timeout as a C int.
        timeout = self.busy_timeout_ms
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 <= timeout < 2**31:
            raise InvalidArgumentError(
                f"busy_timeout_ms={self.busy_timeout_ms!r}: must be a whole number 0..{2**31 - 1:,}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back.

        With the SQLite backend the backend and ``pg_`` fields are left out (they do not
        apply, and a SQLite strategy reads as it did before they existed); a server URL's
        password is written as ``***``.
        """
        out: dict[str, Any] = {}
        postgres = self.backend != "sqlite"
        for f in fields(self):
            if not postgres and f.name in POSTGRES_FIELDS:
                continue
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, StrEnum | Wakeup) else value
        if postgres:
            out["backend"] = redact_dsn(self.backend)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueueConfig:
        """Build from a mapping of field names; unknown keys are an error naming the valid ones."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidArgumentError(
                f"unknown queue option(s) {', '.join(unknown)}; valid: {', '.join(known)}"
            )
        return cls(**dict(data))

    @classmethod
    def parse(cls, text: str, base: QueueConfig | None = None) -> QueueConfig:
        """Parse ``key=value,key=value`` (CLI form) on top of ``base`` (default: defaults).

        Dashes and underscores are interchangeable in keys: ``claim-batch=100``.
        """
        base = base or cls()
        known = {f.name: f for f in fields(cls)}
        changes: dict[str, Any] = {}
        try:
            for pair in keyvalue.pairs(keyvalue.split_pairs(text)):
                if pair.key not in known:
                    raise InvalidArgumentError(
                        f"unknown queue option {pair.key!r}; valid: {', '.join(known)}"
                    )
                changes[pair.key] = _coerce(pair.key, getattr(base, pair.key), pair.raw)
        except keyvalue.KeyValueError as error:
            raise InvalidArgumentError(
                f"queue option {error.item!r}: expected {error.expected}"
            ) from None
        return dataclasses.replace(base, **changes)


SERVER_ENV = "QUEUEPROF_PG"
"""The environment variable naming the PostgreSQL server that benchmarks, tests and the
crossover workload use (a URL); here, so reading it needs no asyncpg."""

POSTGRES_FIELDS = frozenset(
    {
        "backend",
        "pg_claim",
        "pg_claim_commit",
        "pg_acks",
        "pg_pool",
        "pg_synchronous_commit",
        "pg_activity_ms",
    }
)
"""The fields only the PostgreSQL backend reads (``backend`` names it)."""


def is_dsn(target: object) -> bool:
    """True when ``target`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def check_backend(text: object) -> str:
    """``text`` if it is ``sqlite`` or a PostgreSQL URL; otherwise an error saying which."""
    if text == "sqlite":
        return text
    if is_dsn(text):
        _check_ports(str(text))
        return str(text)
    raise InvalidArgumentError(
        f"backend={text!r}: choose 'sqlite' or a PostgreSQL URL such as "
        "postgresql://127.0.0.1/postgres (user, password and port as usual)"
    )


def _check_ports(dsn: str) -> None:
    """Refuse a URL whose host part has a port that is not a number 1..65535 (``host:x``):
    the driver would fail on it only once the run has started, with ``invalid literal``."""
    rest = dsn.partition("://")[2]
    cut = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    for host in rest[:cut].rpartition("@")[2].split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        port = port.partition(":")[2] if ":" in port else ""
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise InvalidArgumentError(
                f"backend={redact_dsn(dsn)!r}: port {port!r} is not a number 1..65535; write "
                "the URL as postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            )


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password, in the user part or the query, written as ``***`` (for
    manifests and messages)."""
    dsn = _QUERY_PASSWORD.sub(r"\1***", dsn)
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return dsn
    cut = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return dsn
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{tail}"


_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def parse_affinity(text: str) -> int | None:
    """The CPU named by a ``cpu_affinity`` value: None for ``off``, -1 for ``colocate``."""
    if text == "off":
        return None
    if text == "colocate":
        return -1
    kind, _, number = str(text).partition(":")
    if kind == "cpu" and number.isdigit():
        return int(number)
    raise InvalidArgumentError(
        f"cpu_affinity={text!r}: choose 'off', 'colocate' or 'cpu:N' (N a CPU number)"
    )


def _finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _enum(kind: type[StrEnum], name: str, value: object) -> Any:
    try:
        return kind(str(value))
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise InvalidArgumentError(f"{name}={value!r}: choose one of {choices}") from None


def _coerce(key: str, current: object, raw: str) -> object:
    kind: type[Any] = str
    if isinstance(current, bool | float):
        kind = type(current)
    elif isinstance(current, int) and not isinstance(current, StrEnum):
        kind = int
    try:
        return keyvalue.coerce(kind, raw)
    except keyvalue.KeyValueError as error:
        raise InvalidArgumentError(f"{key}={raw!r}: expected {error.expected}") from None
