"""`compose subscribers check`: every list, segments.yaml and suppressions.csv, all at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from composer.audience.lists import Selection, list_names, list_path, select
from composer.audience.records import open_table
from composer.audience.segments import SEGMENTS_FILE, load_segments
from composer.audience.suppressions import check_suppressions
from composer.errors import InvalidInput, Problem
from composer.project import Project, display_path


@dataclass
class ListReport:
    """The outcome of checking one list (no segment applied)."""

    name: str
    display: str
    selection: Selection | None  # None when the file could not be read at all
    problems: list[Problem]

    @property
    def errors(self) -> int:
        return sum(p.severity == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        return sum(p.severity == "warning" for p in self.problems)


@dataclass
class CheckReport:
    """Every list checked, plus problems in the shared files."""

    lists: list[ListReport] = field(default_factory=list)
    shared: list[Problem] = field(default_factory=list)  # segments.yaml, suppressions.csv

    @property
    def problems(self) -> list[Problem]:
        return [*(p for r in self.lists for p in r.problems), *self.shared]

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def check_lists(project: Project, names: list[str] | None = None) -> CheckReport:
    """Check the named lists (default: all) and the segments and suppressions they rely on."""
    report = CheckReport()
    report.shared.extend(check_suppressions(project))
    chosen = names or list_names(project)
    for name in chosen:
        path = list_path(project, name)
        display = display_path(path)
        try:
            selection = select(project, name, skip_invalid=True)
        except InvalidInput as exc:
            report.lists.append(ListReport(path.stem, display, None, list(exc.problems)))
            continue
        report.lists.append(ListReport(path.stem, display, selection, selection.problems))
    folder = project.subscribers_dir
    try:
        segments = load_segments(
            folder, display_path(folder / SEGMENTS_FILE), project.newsletter.pillars
        )
    except InvalidInput as exc:
        report.shared.extend(exc.problems)
        return report
    report.shared.extend(segments.problems)
    if not segments.problems:
        report.shared.extend(segments.check_columns(_all_columns(project)))
    return report


def _all_columns(project: Project) -> set[str]:
    """The header columns of every list, read from the first line of each file only."""
    columns: set[str] = set()
    for name in list_names(project):
        path = list_path(project, name)
        try:
            with open_table(path, display_path(path)) as table:
                columns.update(table.columns)
        except InvalidInput:
            continue  # reported with the list itself
    return columns
