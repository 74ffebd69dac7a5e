"""One reader in or out of a list, and a suppression lifted: the small writes of `compose serve`
and `compose subscribers add|remove`, through the same locked, atomic writer as an import.

A change to a list takes the list's lock (`.compose/list-<name>.lock`, the one `import` takes),
reads the list as it is now, and replaces it atomically: nothing written meanwhile by an import
or by another process is lost. Changes that threads of one process make at once share one
rewrite (`GroupRegistry`), so a burst of confirmations rewrites a list a few times, not once each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from composer.atomic import AtomicFile
from composer.audience.consent import CONSENT_FILE
from composer.audience.groupcommit import GroupRegistry
from composer.audience.lists import list_names
from composer.audience.records import (
    EMAIL,
    CsvLines,
    Table,
    address_key,
    list_writer,
    open_table,
)
from composer.audience.rowcheck import SUBSCRIBED, UNSUBSCRIBED
from composer.audience.suppressions import LOCK_FILE as SUPPRESSIONS_LOCK
from composer.audience.suppressions import SUPPRESSIONS_FILE, suppressions_path
from composer.errors import InvalidInput, Problem, UsageError
from composer.project import Project, display_path

STATUS = "status"
LOCK_TIMEOUT_SECONDS = 60
_LIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NOT_LISTS = (SUPPRESSIONS_FILE, CONSENT_FILE)

Kind = Literal["join", "leave", "remove", "update"]
# What a change did: added, updated, unchanged, left, removed, or absent (no such reader).
Result = Literal["added", "updated", "unchanged", "left", "removed", "absent"]


@dataclass(frozen=True)
class Change:
    """One change to one reader's row in a list.

    join: add the reader (or mark them subscribed again) with `cells`; leave: mark them
    unsubscribed (the row stays, so an old spreadsheet never re-adds them); remove: delete the
    row; update: set `cells` on a row that is there.
    """

    email: str
    kind: Kind
    cells: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """The address as lists compare it."""
        return address_key(self.email)


def reader_lists(project: Project) -> list[str]:
    """The names of the subscriber lists (consent.csv and suppressions.csv are not lists)."""
    return [name for name in list_names(project) if f"{name}.csv" not in _NOT_LISTS]


def checked_list_name(name: str) -> str:
    """`name` without `.csv`, or a usage error when it cannot be a list."""
    name = name.removesuffix(".csv")
    if not _LIST_NAME.match(name) or f"{name}.csv" in _NOT_LISTS:
        raise UsageError(f"'{name}' cannot be a list name (use letters, digits, - and _)")
    return name


_GROUPS: GroupRegistry[Change, Result] = GroupRegistry()


def change_list(project: Project, list_name: str, changes: Sequence[Change]) -> list[Result]:
    """Apply `changes` to list `list_name` (created when a join needs it); each one's result."""
    name = checked_list_name(list_name)
    path = project.subscribers_dir / f"{name}.csv"
    if not changes:
        return []
    return _GROUPS.submit(path, changes, lambda batch: _rewrite(project, name, path, batch))


def _rewrite(project: Project, name: str, path: Path, batch: list[Change]) -> list[Result]:
    from filelock import FileLock  # only writers need it; readers start faster

    lock = FileLock(str(project.state_dir() / f"list-{name}.lock"), timeout=LOCK_TIMEOUT_SECONDS)
    wanted: dict[str, list[int]] = {}
    for n, change in enumerate(batch):
        wanted.setdefault(change.key, []).append(n)
    results: list[Result | None] = [None] * len(batch)
    extra = [c for change in batch for c, _ in change.cells]
    if any(change.kind == "leave" for change in batch):
        extra.append(STATUS)
    with lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with AtomicFile(path) as out:
            changed = False
            if path.exists():
                with open_table(path, display_path(path)) as table:
                    header = _union([*table.columns, *extra])
                    bom, lines = list_writer(table)  # the dialect its owner's Excel uses
                    out.write(bom + lines.line(_written(table, header)))
                    ei = table.position(EMAIL)
                    for _, row in table.rows():
                        if not row:
                            continue
                        cells: dict[str, str] | None = dict(zip(table.columns, row, strict=True))
                        numbers = wanted.get(address_key(row[ei]), [])
                        for n in numbers:
                            cells, result = _apply(cells, batch[n])
                            if results[n] is None:
                                results[n] = result
                            changed = changed or result not in ("unchanged", "absent")
                        if cells is not None:
                            out.write(lines.line([cells.get(c, "") for c in header]))
                    if table.problems:  # rewriting would drop the rows it could not read
                        raise InvalidInput(
                            [*table.problems, Problem("fix these rows of the list first")]
                        )
            else:
                header = _union([EMAIL, *extra])
                lines = CsvLines()
                out.write(lines.line(header))
            for numbers in wanted.values():
                if results[numbers[0]] is not None:
                    continue  # the list has this reader
                new: dict[str, str] | None = None
                for n in numbers:
                    new, results[n] = _apply(new, batch[n])
                if new is not None:
                    out.write(lines.line([new.get(c, "") for c in header]))
                    changed = True
            if not changed:
                out.discard()  # a list that needs nothing is left untouched, byte for byte
    return [r if r is not None else "absent" for r in results]


def _apply(cells: dict[str, str] | None, change: Change) -> tuple[dict[str, str] | None, Result]:
    """A row after `change` (None: no row), and what the change did to it."""
    if change.kind == "remove":
        return None, "removed" if cells is not None else "absent"
    if cells is None:
        if change.kind != "join":
            return None, "absent"
        return {EMAIL: change.email.strip(), **dict(change.cells)}, "added"
    before = dict(cells)
    if change.kind == "leave":
        if (cells.get(STATUS) or "").strip().lower() == UNSUBSCRIBED:
            return cells, "unchanged"
        cells[STATUS] = UNSUBSCRIBED
        return cells, "left"
    cells.update(change.cells)
    if change.kind == "join" and (cells.get(STATUS) or "").strip().lower() == UNSUBSCRIBED:
        cells[STATUS] = SUBSCRIBED
    return cells, "unchanged" if cells == before else "updated"


def _union(columns: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(columns))


def _written(table: Table, header: list[str]) -> list[str]:
    """`header` with the file's own columns spelled as its header has them ("E-mail")."""
    spelled = dict(zip(table.columns, table.header, strict=False))
    return [spelled.get(column) or column for column in header]


def is_subscribed(cells: dict[str, str]) -> bool:
    """Whether a list row is mailed (status empty or `subscribed`)."""
    return (cells.get(STATUS) or "").strip().lower() in ("", SUBSCRIBED)


def memberships(project: Project, email: str) -> dict[str, dict[str, str]]:
    """The first row of `email` in each list that has it, by list name."""
    key = address_key(email)
    found: dict[str, dict[str, str]] = {}
    for name in reader_lists(project):
        for cells in rows_of(project.subscribers_dir / f"{name}.csv", key):
            found[name] = cells
            break
    return found


def rows_of(path: Path, key: str) -> Iterator[dict[str, str]]:
    """The rows of the list at `path` whose address key is `key`, as column -> cell."""
    with open_table(path, display_path(path)) as table:
        ei = table.position(EMAIL)
        for _, row in table.rows():
            if row and address_key(row[ei]) == key:
                yield dict(zip(table.columns, row, strict=True))


def lift_suppression(project: Project, email: str) -> list[tuple[str, str, str]]:
    """Remove `email` from suppressions.csv; the (email, reason, date) rows that were there.

    Takes the lock every suppression writer takes and replaces the file atomically; each
    process's index of it notices the new file and reads it again.
    """
    from filelock import FileLock

    path = suppressions_path(project)
    if not path.is_file():
        return []
    key = address_key(email)
    lifted: list[tuple[str, str, str]] = []
    lock = FileLock(str(project.state_dir() / SUPPRESSIONS_LOCK), timeout=LOCK_TIMEOUT_SECONDS)
    with lock, open_table(path, display_path(path)) as table, AtomicFile(path) as out:
        ei, ri, di = table.position(EMAIL), table.index("reason"), table.index("date")
        bom, lines = list_writer(table)
        out.write(bom + lines.line(_written(table, table.columns)))
        for _, row in table.rows():
            if row and address_key(row[ei]) == key:
                reason = row[ri] if ri is not None else ""
                lifted.append((row[ei].strip(), reason, row[di] if di is not None else ""))
            elif row:
                out.write(lines.line(row))
        if table.problems:
            raise InvalidInput(table.problems)
        if not lifted:
            out.discard()
    return lifted
