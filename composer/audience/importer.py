"""Merge another CSV into a subscriber list: dedupe, report each row's fate, write atomically."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from composer.atomic import AtomicFile
from composer.audience.records import EMAIL, CsvLines, Table, address_key, is_blank, open_table
from composer.audience.rowcheck import UNSUBSCRIBED, CellJudge, status_problem
from composer.audience.suppressions import SUPPRESSIONS_FILE
from composer.errors import InvalidInput, Problem, UsageError
from composer.project import Project, display_path

STATUS = "status"
_LIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_UNNAMED = re.compile(r"column\d+\Z")  # what records.open_table calls a column without a name


@dataclass
class ImportReport:
    """What an import did to a list, and why rows of the source were left out."""

    list_name: str
    path: Path
    created: bool = False
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Problem] = field(default_factory=list)  # source rows with errors
    notes: list[Problem] = field(default_factory=list)  # warnings: duplicates, kept unsubscribed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)


def import_list(project: Project, source: Path, list_name: str) -> ImportReport:
    """Merge `source` into list `list_name` (created if new); rows with errors are rejected."""
    name = list_name.removesuffix(".csv")
    if not _LIST_NAME.match(name) or f"{name}.csv" == SUPPRESSIONS_FILE:
        raise UsageError(f"'{list_name}' cannot be a list name (use letters, digits, - and _)")
    target = project.subscribers_dir / f"{name}.csv"
    report = ImportReport(name, target, created=not target.exists())
    judge = CellJudge(project.newsletter.pillars)
    columns, incoming = _read_source(source, judge, report)
    from filelock import FileLock  # only writers need it; readers start faster

    lock = FileLock(str(project.state_dir() / f"list-{name}.lock"), timeout=60)
    with lock, AtomicFile(target) as out:
        if target.exists():
            with open_table(target, display_path(target)) as table:
                header = _union(table.columns, columns)
                lines = _start(out, header, table.crlf, table.bom)
                for cells in _merge(table, incoming, report):
                    out.write(lines.line([cells.get(c, "") for c in header]))
                if table.problems:  # rewriting would drop the rows it could not read
                    hint = Problem("fix these rows of the list before importing into it")
                    raise InvalidInput([*table.problems, hint])
        else:
            header = columns
            lines = _start(out, header, False, False)
        for new in incoming.values():
            if new is not None:
                report.added += 1
                out.write(lines.line([new.get(c, "") for c in header]))
        if not report.changed:
            out.discard()  # leave a file that needs nothing untouched, byte for byte
    return report


def _read_source(
    source: Path, judge: CellJudge, report: ImportReport
) -> tuple[list[str], dict[str, dict[str, str] | None]]:
    """The source's named columns and its valid rows by address key, first occurrence only."""
    incoming: dict[str, dict[str, str] | None] = {}
    first_line: dict[str, int] = {}
    with open_table(source, display_path(source)) as table:
        ei, ii, si = table.position(EMAIL), table.index("interests"), table.index(STATUS)
        filled: set[str] = set()  # columns with a value somewhere
        for line, row in table.rows():
            if not row or is_blank(row):
                continue
            email = row[ei].strip()
            reasons = [judge.address_problem(email)]
            if ii is not None:
                reasons.append(judge.interests_problem(row[ii]))
            if si is not None and judge.subscribed(row[si]) is None:
                reasons.append(status_problem(row[si]))
            errors = [Problem(r, table.display, line) for r in reasons if r]
            if errors:
                report.rejected.extend(errors)
                continue
            key = address_key(email)
            if key in first_line:
                message = f"duplicate of line {first_line[key]} ({email}); the first row wins"
                report.notes.append(Problem(message, table.display, line, severity="warning"))
                continue
            first_line[key] = line
            cells = {c: row[i].strip() for i, c in enumerate(table.columns)}
            cells[EMAIL] = email
            filled.update(c for c, value in cells.items() if value)
            incoming[key] = cells
        report.rejected.extend(table.problems)
        # A spreadsheet's trailing empty, unnamed column is not worth adding to the list.
        columns = [c for c in table.columns if c in filled or not _UNNAMED.match(c)]
    report.rejected.sort(key=lambda p: p.line or 0)
    return columns, incoming


def _merge(
    table: Table, incoming: dict[str, dict[str, str] | None], report: ImportReport
) -> Iterator[dict[str, str]]:
    """The list's rows with matching source rows merged in; matched entries are set to None."""
    ei = table.position(EMAIL)
    for line, row in table.rows():
        if not row:
            continue
        cells = dict(zip(table.columns, row, strict=True))
        key = address_key(row[ei])
        update = incoming.get(key)
        if update is None:
            yield cells
            continue
        incoming[key] = None  # later duplicates in the list are left as they are
        changed = False
        for column, value in update.items():
            if column == EMAIL or not value or cells.get(column, "").strip() == value:
                continue
            if column == STATUS and cells.get(STATUS, "").strip().lower() == UNSUBSCRIBED:
                message = (
                    f"{update[EMAIL]} stays unsubscribed (line {line} of {table.display}); "
                    "an import never re-subscribes a reader"
                )
                report.notes.append(Problem(message, severity="warning"))
                continue
            cells[column] = value
            changed = True
        report.updated += changed
        report.unchanged += not changed
        yield cells


def _union(existing: list[str], extra: list[str]) -> list[str]:
    return [*existing, *(c for c in extra if c not in existing)]


def _start(out: AtomicFile, header: list[str], crlf: bool, bom: bool) -> CsvLines:
    """Write the BOM (if the list had one) and the header; the writer for the rows."""
    lines = CsvLines("\r\n" if crlf else "\n")
    out.write(("\ufeff" if bom else "") + lines.line(header))
    return lines
