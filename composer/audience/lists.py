"""Subscriber lists: who a send reaches, streamed from subscribers/<list>.csv in one pass."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from composer.audience.consent import CONSENT_FILE
from composer.audience.records import EMAIL, Table, open_table
from composer.audience.rowcheck import CellJudge
from composer.audience.scan import Criteria, Tally, count_pass, select_rows
from composer.audience.segments import Test, compile_segment, load_segments
from composer.audience.suppressions import SUPPRESSIONS_FILE, load_suppressed
from composer.errors import ComposeError, InvalidInput, Problem, suggest
from composer.project import Project, display_path

NAME = "name"


@dataclass(frozen=True)
class Recipient:
    """One reader a send will reach."""

    email: str  # as written in the list, trimmed
    key: str  # lowercased: what dedupe, suppressions and logs compare
    name: str = ""
    attributes: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    line: int = 0  # physical line in the list file


@dataclass
class Selection(Tally):
    """The readers of one list (and segment) that a send reaches, with the counts behind them."""

    list_name: str = ""
    path: Path = Path()
    segment: str | None = None
    columns: list[str] = field(default_factory=list)  # the list's header, normalized
    recipients: Recipients | None = None


NOT_LISTS = frozenset({SUPPRESSIONS_FILE, CONSENT_FILE})


def list_names(project: Project) -> list[str]:
    """The names of the lists in subscribers/, sorted (suppressions and consent records are not
    lists: `send --list consent` must never mail everyone who ever consented)."""
    folder = project.subscribers_dir
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.csv") if p.name not in NOT_LISTS and p.is_file())


def list_path(project: Project, name: str) -> Path:
    """The file of list `name`; exit 1 naming the lists there are when it does not exist."""
    name = name.removesuffix(".csv")
    known = list_names(project)
    if name in known:
        return project.subscribers_dir / f"{name}.csv"
    folder = display_path(project.subscribers_dir)
    if not known:
        raise ComposeError(
            f"unknown list '{name}': there are no lists in {folder}/ (add {name}.csv)"
        )
    hint = suggest(name, known, cutoff=0.5)
    fix = f"; did you mean '{hint}'?" if hint else ""
    raise ComposeError(f"unknown list '{name}' (lists in {folder}/: {', '.join(known)}){fix}")


def select(
    project: Project, list_name: str, segment: str | None = None, *, skip_invalid: bool = False
) -> Selection:
    """Check a list in one streaming pass and return who a send would reach.

    Raises InvalidInput before anyone is yielded when rows have errors, unless skip_invalid.
    """
    path = list_path(project, list_name)
    tests_for = _segment_compiler(project, segment)
    suppressed = load_suppressed(project)
    selection = Selection(list_name=path.stem, path=path, segment=segment)
    with open_table(path, display_path(path)) as table:
        stamp = table.identity()
        selection.columns = list(table.columns)
        criteria = Criteria(CellJudge(project.newsletter.pillars), tests_for(table), suppressed)
        repeated = count_pass(table, criteria, selection)
        selection.problems[:0] = table.notes  # read in a Windows code page: said first
    if selection.errors and not skip_invalid:
        rows = selection.invalid
        hint = Problem(
            f"{rows} row{'s' if rows != 1 else ''} of {display_path(path)} "
            "have errors; fix them, or pass --skip-invalid to leave those rows out"
        )
        raise InvalidInput([*selection.problems, hint])
    selection.recipients = Recipients(
        _Source(project, path, tests_for, suppressed, stamp, repeated), selection.count
    )
    return selection


@dataclass(frozen=True)
class _Source:
    """What a later pass needs to re-read exactly the rows the first pass selected."""

    project: Project
    path: Path
    tests_for: Callable[[Table], list[Test]]
    suppressed: set[str]
    stamp: tuple[int, int, int, int]
    repeated: set[int]  # lines of rows that repeat an earlier address


class Recipients:
    """The selected readers, streamed afresh from the file on each iteration."""

    def __init__(self, source: _Source, count: int) -> None:
        self._source = source
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Recipient]:
        source = self._source
        display = display_path(source.path)
        # Whoever unsubscribed since the check is left out too: sending never mails them.
        since = load_suppressed(source.project) - source.suppressed
        with open_table(source.path, display) as table:
            if table.identity() != source.stamp:
                raise ComposeError(f"{display} changed since it was checked; run the command again")
            criteria = Criteria(
                CellJudge(source.project.newsletter.pillars),
                source.tests_for(table),
                source.suppressed,
            )
            ei, ni = table.position(EMAIL), table.index(NAME)
            extra = [(i, c) for i, c in enumerate(table.columns) if c not in (EMAIL, NAME)]
            seen = 0
            for line, row, key in select_rows(table, criteria, source.repeated):
                seen += 1
                if key in since:
                    continue
                yield Recipient(
                    email=row[ei].strip(),
                    key=key,
                    # A name goes into a To: header: one line, single spaces.
                    name=" ".join(row[ni].split()) if ni is not None else "",
                    attributes={column: row[i].strip() for i, column in extra},
                    line=line,
                )
        if seen != self._count:
            raise ComposeError(f"{display} changed while it was read; run the command again")


def _segment_compiler(project: Project, segment: str | None) -> Callable[[Table], list[Test]]:
    """A function giving the compiled tests of `segment` for a table (none without a segment)."""
    if segment is None:
        return lambda table: []
    folder = project.subscribers_dir
    chosen = load_segments(
        folder, display_path(folder / "segments.yaml"), project.newsletter.pillars
    ).get(segment)
    return lambda table: compile_segment(chosen, table.columns, table.display)
