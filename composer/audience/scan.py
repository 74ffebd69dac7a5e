"""The passes over a list: check every row, find repeats, apply segment, status and suppressions.

A million-row list must take one pass at close to the speed of reading the file, so the
work is done a block of rows at a time: the addresses of a block are checked together in C
(one regex over all of them, one set lookup for their domains, each judged once), the cells
that repeat are judged once per distinct combination (`Verdicts`), and what is left per row is
a few steps. Repeated addresses are settled exactly at the end of the first pass
(`AddressLedger`); later passes only skip the lines it named.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter

from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH

from composer.audience.ledger import LEFT_OUT, AddressLedger
from composer.audience.records import EMAIL, Table, address_key, is_blank
from composer.audience.rowcheck import (
    INVALID,
    OUTSIDE,
    SEND,
    SUPPRESSED,
    UNSUBSCRIBED_ROW,
    CellJudge,
    Verdicts,
)
from composer.audience.segments import Test
from composer.errors import Problem

REPEATED = 5  # the fate of a row whose address an earlier row has
UNJUDGED = -1  # a combination of cells not judged yet
# Lines of "dot-atom@anything" (dot-atom as email-validator has it): findall gives the domains
# of a whole block of newline-joined addresses in one call.
_ATOM = DOT_ATOM_TEXT.pattern.removesuffix("\\Z")
ADDRESSES = re.compile(rf"^{_ATOM}@([^\n]*)$", re.MULTILINE).findall


@dataclass
class Tally:
    """What one pass over a list found."""

    rows: int = 0  # data rows read (blank lines aside)
    invalid: int = 0  # rows with at least one error; never mailed
    duplicates: int = 0  # later rows repeating an address; the first row wins
    outside_segment: int = 0
    unsubscribed: int = 0
    suppressed: int = 0
    count: int = 0  # who would receive a send
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


@dataclass
class Criteria:
    """What decides a row's fate besides the row: pillars, the segment, the suppressions."""

    judge: CellJudge
    tests: list[Test]
    suppressed: set[str]


def count_pass(table: Table, criteria: Criteria, tally: Tally) -> set[int]:
    """Read the whole table once and fill `tally` exactly; return the lines of repeated rows."""
    tally.problems = table.problems  # the table reports unreadable rows there too
    verdicts = Verdicts(criteria.judge, criteria.tests, table.columns)
    ledger = AddressLedger(table.expected_rows)
    fates = bytearray()  # the fate of each recorded key, by ordinal
    for lines, rows, keys, joined in _addresses(table, criteria, verdicts, tally):
        ledger.add_block(joined, lines)
        codes = _fates(table, criteria, verdicts, tally, lines, rows, keys)
        fates.extend(codes)
        hashes = list(map(hash, keys))
        if INVALID in codes:
            hashes = [LEFT_OUT if c == INVALID else h for c, h in zip(codes, hashes, strict=True)]
        ledger.add_hashes(hashes)
    repeated = set()
    first_of = ledger.repeats()
    for ordinal in sorted(first_of):
        line = ledger.line_of(ordinal)
        repeated.add(line)
        fates[ordinal] = REPEATED
        first, key = ledger.line_of(first_of[ordinal]), ledger.key_of(ordinal)
        message = f"duplicate of line {first} ({key}); the first row wins"
        tally.problems.append(Problem(message, table.display, line, severity="warning"))
    tally.duplicates = len(first_of)
    tally.invalid += fates.count(INVALID)
    tally.count = fates.count(SEND)
    tally.outside_segment = fates.count(OUTSIDE)
    tally.unsubscribed = fates.count(UNSUBSCRIBED_ROW)
    tally.suppressed = fates.count(SUPPRESSED)
    # Blocks report bad addresses before bad cells; a stable sort restores reading order.
    tally.problems.sort(key=lambda p: p.line or 0)
    return repeated


def select_rows(
    table: Table, criteria: Criteria, repeated: set[int]
) -> Iterator[tuple[int, list[str], str]]:
    """(line, row, key) of each row a send reaches, given the repeats the first pass found."""
    verdicts = Verdicts(criteria.judge, criteria.tests, table.columns)
    tally = Tally()
    for lines, rows, keys, _ in _addresses(table, criteria, verdicts, tally):
        codes = _fates(table, criteria, verdicts, tally, lines, rows, keys)
        for line, row, key, code in zip(lines, rows, keys, codes, strict=True):
            if code == SEND and line not in repeated:
                yield line, row, key


def _fates(
    table: Table,
    criteria: Criteria,
    verdicts: Verdicts,
    tally: Tally,
    lines: Sequence[int],
    rows: list[list[str]],
    keys: list[str],
) -> list[int]:
    """The fate of each row of a block (SEND, OUTSIDE, ...); cell errors are reported."""
    cell_sets = list(map(verdicts.pick, rows))
    codes = list(map(verdicts.codes.get, cell_sets, repeat(UNJUDGED)))
    if UNJUDGED in codes:  # combinations not met before
        codes = [
            verdicts.judge(cells, row) if code == UNJUDGED else code
            for cells, row, code in zip(cell_sets, rows, codes, strict=True)
        ]
    if INVALID in codes:
        for line, cells, code in zip(lines, cell_sets, codes, strict=True):
            if code == INVALID:
                messages = verdicts.messages(cells)
                tally.problems.extend(Problem(m, table.display, line) for m in messages)
    if not criteria.suppressed.isdisjoint(keys):
        codes = [
            SUPPRESSED if code == SEND and key in criteria.suppressed else code
            for code, key in zip(codes, keys, strict=True)
        ]
    return codes


def _addresses(
    table: Table, criteria: Criteria, verdicts: Verdicts, tally: Tally
) -> Iterator[tuple[Sequence[int], list[list[str]], list[str], str]]:
    """Blocks of (lines, rows, address keys, the keys newline-joined), every invalid address
    reported and left out."""
    ei = table.position(EMAIL)
    email_of = itemgetter(ei)
    judge = criteria.judge
    plain = judge.plain_domains
    for lines, rows in table.blocks():
        tally.rows += len(rows)
        # Block check: 1M rows, 2.18 s CPU vs 2.63 s singly (benchmarks/subscribers.py, 2026-12-02)
        if all(rows):
            emails = list(map(email_of, rows))
            text = "\n".join(emails)
            domains = ADDRESSES(text)  # the domain of each line that is dot-atom@something
            if len(domains) == len(emails) and text.count("\n") == len(emails) - 1:
                distinct = set(domains)
                if not plain.issuperset(distinct):
                    judge.learn_domains(distinct)
                if plain.issuperset(distinct) and max(map(len, emails)) <= EMAIL_MAX_LENGTH:
                    # Every address valid: a dot-atom at a known plain domain (so all ASCII,
                    # no spaces), none too long. Their keys: the same text, lowercased.
                    joined = text.lower()
                    yield lines, rows, joined.split("\n"), joined
                    continue
            emails = list(map(str.strip, emails))
        else:  # some records could not be read (the table reported them)
            emails = [row[ei].strip() if row else "" for row in rows]
        parts = [email.partition("@") for email in emails]
        kept = _check_each(table, judge, verdicts, tally, lines, rows, emails, parts)
        yield (*kept, "\n".join(kept[2]))


def _check_each(
    table: Table,
    judge: CellJudge,
    verdicts: Verdicts,
    tally: Tally,
    lines: Sequence[int],
    rows: list[list[str]],
    emails: list[str],
    parts: list[tuple[str, str, str]],
) -> tuple[list[int], list[list[str]], list[str]]:
    """The block's rows with valid addresses; a bad row is reported with all its errors."""
    display = table.display
    kept: tuple[list[int], list[list[str]], list[str]] = ([], [], [])
    for line, row, email, (local, _, domain) in zip(lines, rows, emails, parts, strict=True):
        if not row:  # unreadable; the table already reported it
            tally.invalid += 1
            continue
        if not judge.fast_valid(local, judge.domain_length(domain)):
            if not email and is_blank(row):
                tally.rows -= 1
                continue
            why = judge.address_problem(email)
            if why:
                tally.invalid += 1
                table.problems.append(Problem(why, display, line))
                if verdicts.code(row) == INVALID:
                    messages = verdicts.messages(verdicts.pick(row))
                    table.problems.extend(Problem(m, display, line) for m in messages)
                continue
        kept[0].append(line)
        kept[1].append(row)
        kept[2].append(address_key(email))
    return kept
