"""Engine creation and transaction scopes for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, event, insert, text
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import ClauseElement
from sqlmodel import Session, create_engine

_WRITE_OPTION = "gateway_write"
_LAZY_OPTION = "gateway_lazy_commit"


def create_database_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Build an engine tuned for the store's access pattern on either backend."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


SQLITE_MMAP_BYTES = 256 * 1024 * 1024


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take over transaction control from pysqlite so that writers can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsynced at every commit, so a committed row survives power loss.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Reads through a memory map instead of a read() per page: a FETCH 1:* of a 10,000-
        # message mailbox reads ~10,000 pages (measured 25% faster). Writes still go through
        # the WAL; the mapped pages are the kernel's page cache, not process memory.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A read-then-write transaction that began deferred fails with SQLITE_BUSY instead of
        # waiting when another writer commits first; writers therefore take the lock up front.
        options = connection.get_execution_options()
        if options.get(_WRITE_OPTION):
            # Per transaction, before it begins (SQLite ignores the change inside one): a lazy
            # commit appends to the WAL without fsync; the next durable commit or checkpoint
            # writes it out. Kept per connection so durable writes issue no extra statement.
            lazy = bool(options.get(_LAZY_OPTION))
            info = connection.connection.info
            if info.get(_LAZY_OPTION, False) != lazy:
                connection.exec_driver_sql(f"PRAGMA synchronous={'NORMAL' if lazy else 'FULL'}")
                info[_LAZY_OPTION] = lazy
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif options.get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN")


class RawQuery:
    """A SELECT compiled once for one dialect and run on a bare DBAPI cursor.

    For the few hot reads that return thousands of rows (FETCH 1:* of precomputed columns),
    SQLAlchemy's per-row result machinery costs more than SQLite itself; this keeps the
    statement portable (compiled by SQLAlchemy) and the rows plain tuples.
    """

    def __init__(self, statement: Select[Any] | UpdateBase, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._positional = compiled.positional
        self._names = list(compiled.positiontup or ())
        # Values the statement itself binds (`highestmodseq + 1`); callers give the rest.
        self._fixed = {name: value for name, value in compiled.params.items() if value is not None}
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        # A SELECT's columns, or what an UPDATE/INSERT ... RETURNING gives back.
        for index, column in enumerate(statement.exported_columns):
            processor = column.type._cached_result_processor(dialect, None)
            if processor is not None:
                self._processors.append((index, processor))

    def run(
        self, connection: Connection | PoolProxiedConnection, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """On a Core connection (inside its transaction) or a pooled DBAPI connection
        (`Database.raw_read`)."""
        if self._fixed:
            params = {**self._fixed, **params}
        arguments: Any = tuple(params[name] for name in self._names) if self._positional else params
        dbapi = connection.connection if isinstance(connection, Connection) else connection
        cursor = dbapi.cursor()
        try:
            cursor.execute(self.sql, arguments)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if not self._processors:
            # sqlite3 and psycopg already give plain tuples; copy only other row types.
            if not rows or type(rows[0]) is tuple:
                return cast(list[tuple[Any, ...]], rows)
            return [tuple(row) for row in rows]
        processed = []
        for row in rows:
            values = list(row)
            for index, processor in self._processors:
                values[index] = processor(values[index])
            processed.append(tuple(values))
        return processed


class RawWrite:
    """An INSERT/UPDATE compiled once and run with `executemany` on a bare DBAPI cursor.

    STORE 1:* writes ten thousand entry updates and change-log rows; SQLAlchemy's per-row
    parameter processing costs several times what SQLite spends on them. Values come as
    tuples in the order of `names`; bind processors (e.g. for timestamps) are still applied.
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect, names: tuple[str, ...]) -> None:
        # for_executemany: PostgreSQL would otherwise add `RETURNING id` to every row.
        compiled = statement.compile(dialect=dialect, for_executemany=True)
        assert isinstance(compiled, SQLCompiler)  # noqa: S101 - INSERT/UPDATE compile to SQL
        unbound = set(compiled.binds) - set(names)
        if unbound:
            # Columns with Python-side defaults get parameters SQLAlchemy would fill in.
            raise ValueError(f"values missing for {sorted(unbound)} in {statement}")
        self.sql = str(compiled)
        self._dialect = dialect
        self._names = names
        self._positional = compiled.positional
        order = list(compiled.positiontup or ()) if compiled.positional else list(names)
        self._order = [names.index(name) for name in order]
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for name in names:
            processor = compiled.binds[name].type._cached_bind_processor(dialect)
            if processor is not None:
                self._processors.append((names.index(name), processor))

    def run_many(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._processors:
            rows = [self._process(row, {}) for row in rows] if len(rows) < 2 else self._bulk(rows)
        cursor = connection.connection.cursor()
        try:
            self._run(cursor.executemany, [self._arguments(row) for row in rows])
        finally:
            cursor.close()

    def run_returning(self, connection: Connection, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """One row through a statement with RETURNING: the values it returns."""
        return self.run_returning_each(connection, [row])[0]

    def run_returning_each(
        self, connection: Connection, rows: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """Each row through a statement with RETURNING, one execute per row on one cursor:
        what each returned, in row order."""
        if self._processors:
            rows = [self._process(row, {}) for row in rows] if len(rows) < 2 else self._bulk(rows)
        cursor = connection.connection.cursor()
        returned: list[tuple[Any, ...]] = []
        try:
            for row in rows:
                self._run(cursor.execute, self._arguments(row))
                values = cursor.fetchone()
                assert values is not None  # noqa: S101 - an INSERT ... RETURNING returns its row
                returned.append(tuple(values))
        finally:
            cursor.close()
        return returned

    def _arguments(self, row: tuple[Any, ...]) -> Any:
        if not self._positional:
            return dict(zip(self._names, row, strict=True))
        if self._order == list(range(len(self._names))):
            return row
        return tuple(row[i] for i in self._order)

    def _run(self, execute: Callable[[str, Any], object], arguments: Any) -> None:
        try:
            execute(self.sql, arguments)
        except self._dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy would raise it (IntegrityError and friends), so that callers'
            # handlers, such as ingest's retry after an origin race, see the usual types.
            raise DBAPIError.instance(
                self.sql, arguments, error, self._dialect.loaded_dbapi.Error, dialect=self._dialect
            ) from error

    def _bulk(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        # Bulk rows repeat values (one timestamp for a whole STORE): convert each once.
        memo: dict[tuple[int, Any], Any] = {}
        return [self._process(row, memo) for row in rows]

    def _process(self, row: tuple[Any, ...], memo: dict[tuple[int, Any], Any]) -> tuple[Any, ...]:
        values = list(row)
        for index, processor in self._processors:
            key = (index, values[index])
            converted = memo.get(key, memo)
            if converted is memo:
                converted = memo[key] = processor(values[index])
            values[index] = converted
        return tuple(values)


class Database:
    """Hands out sessions: `read()` for queries, `write()` for serialised read-modify-write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._lazy_write_engine = self._write_engine.execution_options(**{_LAZY_OPTION: True})
        # SQLite runs one writer at a time. Left to BEGIN IMMEDIATE alone, this process's
        # other writers would wait in SQLite's busy handler, which sleeps in steps of up to
        # 100 ms instead of waking when the lock frees: under imaptest's mixed load (10
        # clients) STORE took 245 ms where the write itself takes a few. Queuing on a lock
        # here hands the database over at once; other processes still meet busy_timeout.
        self._sqlite_writer = threading.Lock() if self.is_sqlite else None
        self._raw_queries: dict[int, tuple[Select[Any] | UpdateBase, RawQuery]] = {}
        self._raw_writes: dict[int, tuple[ClauseElement, RawWrite]] = {}
        self._row_inserts: dict[tuple[str, tuple[str, ...]], RawWrite] = {}
        self._id_inserts: dict[tuple[str, tuple[str, ...]], RawWrite] = {}

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only transaction whose statements all see one consistent snapshot.

        SQLite's deferred read transaction already does; PostgreSQL needs REPEATABLE READ,
        since under READ COMMITTED each statement sees the newest commits.
        """
        with Session(self.engine, expire_on_commit=False) as session:
            if not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    @contextmanager
    def single_read(self) -> Iterator[Connection]:
        """A Core connection for reads that are one statement each: no BEGIN/ROLLBACK round
        trips around them (a single SELECT sees one snapshot on both backends anyway)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            yield connection

    @contextmanager
    def raw_read(self) -> Iterator[Connection | PoolProxiedConnection]:
        """A connection for one `RawQuery`. On SQLite, whose connections run in autocommit
        (transactions are begun explicitly), the pooled DBAPI connection itself: no Core
        connection set up and torn down around it (~0.15 ms of a mailbox lookup). On
        PostgreSQL that would cost a BEGIN and a ROLLBACK round trip, so `single_read`."""
        if not self.is_sqlite:
            with self.single_read() as core:
                yield core
            return
        connection = self.engine.raw_connection()
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any exception.

        `durable=False` commits without waiting for the disk (SQLite: synchronous=NORMAL in
        WAL mode; PostgreSQL: synchronous_commit off), for changes whose loss to a power cut
        (not to a crash: the database stays consistent) harms no mail: flags and expunges,
        as Dovecot's mail_fsync=optimized does. New mail is always durable (invariant 1).
        """
        engine = self._write_engine if durable else self._lazy_write_engine
        with (
            self._sqlite_writer or nullcontext(),
            Session(engine, expire_on_commit=False) as session,
        ):
            if not durable and not self.is_sqlite:
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def raw_query(self, statement: Select[Any] | UpdateBase) -> RawQuery:
        """`statement` compiled for this database, cached per statement object."""
        query = self._raw_queries.get(id(statement))
        if query is None or query[0] is not statement:
            query = self._raw_queries[id(statement)] = (
                statement,
                RawQuery(statement, self.engine.dialect),
            )
        return query[1]

    def raw_write(self, statement: ClauseElement, names: tuple[str, ...]) -> RawWrite:
        """`statement` compiled for this database, cached per statement object."""
        write = self._raw_writes.get(id(statement))
        if write is None or write[0] is not statement:
            write = self._raw_writes[id(statement)] = (
                statement,
                RawWrite(statement, self.engine.dialect, names),
            )
        return write[1]

    def insert_rows(
        self, connection: Connection, table: Table, rows: Sequence[Mapping[str, object]]
    ) -> None:
        """INSERT `rows` through a bare cursor; every row must have the same keys.

        Ingest inserts an entry, a change and often an origin per message; through a session
        each statement costs ~0.1 ms of SQLAlchemy before SQLite sees it, which a single
        APPEND pays several times. Columns left out get their server default; a column with a
        Python-side default must be given (`RawWrite` refuses the statement otherwise).
        """
        if not rows:
            return
        names = tuple(rows[0])
        if any(len(row) != len(names) for row in rows):
            raise ValueError(f"rows for {table.name} do not all have the keys {names}")
        key = (table.name, names)
        write = self._row_inserts.get(key)
        if write is None:
            statement = insert(table).values({name: bindparam(name) for name in names})
            write = self._row_inserts[key] = RawWrite(statement, self.engine.dialect, names)
        write.run_many(connection, [tuple(row[name] for name in names) for row in rows])

    def insert_returning_id(
        self, connection: Connection, table: Table, row: Mapping[str, object]
    ) -> int:
        """INSERT one row through a bare cursor and return its new `id` (as `insert_rows`:
        an ORM INSERT ... RETURNING costs an APPEND ~0.3 ms of SQLAlchemy)."""
        return self.insert_returning_ids(connection, table, [row])[0]

    def insert_returning_ids(
        self, connection: Connection, table: Table, rows: Sequence[Mapping[str, object]]
    ) -> list[int]:
        """INSERT rows one by one through a bare cursor; their new `id`s in row order. Every
        row must have the same keys. Meant for an in-process SQLite, where a statement costs
        microseconds: SQLAlchemy's batched INSERT ... RETURNING spent ~0.3 ms a row building
        parameters (py-spy of a first sync, issue 17)."""
        names = tuple(rows[0])
        if any(len(row) != len(names) for row in rows):
            raise ValueError(f"rows for {table.name} do not all have the keys {names}")
        key = (table.name, names)
        write = self._id_inserts.get(key)
        if write is None:
            statement = (
                insert(table)
                .values({name: bindparam(name) for name in names})
                .returning(table.c.id)
            )
            write = self._id_inserts[key] = RawWrite(statement, self.engine.dialect, names)
        values = [tuple(row[name] for name in names) for row in rows]
        return [int(returned[0]) for returned in write.run_returning_each(connection, values)]

    def dispose(self) -> None:
        self.engine.dispose()
