"""Judge the cells of subscriber rows: each distinct value once, however many rows repeat it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from operator import itemgetter

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH

from composer.audience.segments import Test, matches
from composer.issue.rules import email_problem

# A row's fate as far as the cells that repeat across rows decide it.
SEND, OUTSIDE, UNSUBSCRIBED_ROW, INVALID, SUPPRESSED = 0, 1, 2, 3, 4
SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
# A domain of letters, digits, dots and hyphens only: as long in every form as written.
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9.-]+\Z")
# Caches hold verdicts on distinct values; past this many they stop growing (memory stays flat).
CACHE_LIMIT = 50_000
DOMAIN_CACHE_LIMIT = 200_000  # a big list can have that many domains; each takes ~150 bytes


class CellJudge:
    """Row checks with memos: a million rows share a few domains, statuses and interest sets."""

    def __init__(self, pillars: Iterable[str]) -> None:
        self.pillars = list(pillars)
        self._pillar_set = frozenset(self.pillars)
        # domain -> the longest form (as written, normalized, IDNA) in UTF-8 octets; -1 if invalid
        self.domain_lengths: dict[str, int] = {}
        # valid domains whose every form is as long as written (most: ASCII, not IDNA)
        self.plain_domains: set[str] = set()
        self._interests: dict[str, str | None] = {}
        self._statuses: dict[str, bool | None] = {}

    def address_problem(self, email: str) -> str | None:
        """Why the trimmed `email` is unusable, or None; the same verdict as email-validator."""
        local, _, domain = email.partition("@")
        if self.fast_valid(local, self.domain_length(domain)):
            return None
        # The unusual rest (no @, international or quoted local parts, bad domains) in full.
        if not email:
            return "empty email address"
        why = email_problem(email)
        return None if why is None else f"invalid email address '{email}': {why}"

    def domain_length(self, domain: str) -> int:
        """The longest form of `domain` in UTF-8 octets, or -1 if it is invalid; judged once."""
        longest = self.domain_lengths.get(domain)
        if longest is None:
            longest = _domain_length(domain)
            if len(self.domain_lengths) < DOMAIN_CACHE_LIMIT:
                self.domain_lengths[domain] = longest
                if longest == len(domain) and _PLAIN_DOMAIN.match(domain):
                    self.plain_domains.add(domain)
        return longest

    def learn_domains(self, domains: Iterable[str]) -> None:
        """Judge each domain not judged before (so `plain_domains` knows the good ones)."""
        known = self.domain_lengths
        for domain in domains:
            if domain not in known:
                self.domain_length(domain)

    @staticmethod
    def fast_valid(local: str, domain_length: int) -> bool:
        """True for the common address: a dot-atom local part at a valid domain, not too long.

        False means "ask email-validator", not "invalid".
        """
        return (
            domain_length >= 0
            and len(local) + 1 + domain_length <= EMAIL_MAX_LENGTH
            and DOT_ATOM_TEXT.match(local) is not None
        )

    def interests_problem(self, cell: str) -> str | None:
        """Why an `interests` cell names something that is not a pillar key, or None."""
        verdict = self._interests.get(cell, "")
        if verdict == "":
            unknown = [p.strip() for p in cell.split(";") if p.strip() not in self._pillar_set]
            unknown = [p for p in unknown if p]
            verdict = None
            if unknown:
                names = ", ".join(f"'{u}'" for u in unknown)
                what = "is not a pillar" if len(unknown) == 1 else "are not pillars"
                verdict = (
                    f"interests {names} {what} "
                    f"(pillars: {';'.join(self.pillars)}; separate several with ';')"
                )
            if len(self._interests) < CACHE_LIMIT:
                self._interests[cell] = verdict
        return verdict

    def subscribed(self, cell: str) -> bool | None:
        """True for subscribed (or empty), False for unsubscribed, None for anything else."""
        if cell in self._statuses:
            return self._statuses[cell]
        word = cell.strip().lower()
        verdict = True if word in ("", SUBSCRIBED) else False if word == UNSUBSCRIBED else None
        if len(self._statuses) < CACHE_LIMIT:
            self._statuses[cell] = verdict
        return verdict


def status_problem(cell: str) -> str:
    """The message for a status cell that `CellJudge.subscribed` rejected."""
    return (
        f"unknown status '{cell.strip()}' "
        f"(use {SUBSCRIBED} or {UNSUBSCRIBED}; empty means {SUBSCRIBED})"
    )


def _domain_length(domain: str) -> int:
    """The longest form of a valid domain in UTF-8 octets, or -1 when the domain is invalid."""
    try:
        checked = validate_email("a@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return -1
    forms = (domain, checked.domain, checked.ascii_domain or "")
    return max(len(form.encode("utf-8")) for form in forms)


class Verdicts:
    """A row's fate from the cells that repeat (interests, status, the segment's columns),
    judged once per distinct combination of them."""

    def __init__(self, judge: CellJudge, tests: list[Test], columns: list[str]) -> None:
        self._judge, self._tests = judge, tests
        self._ii = columns.index("interests") if "interests" in columns else None
        self._si = columns.index("status") if "status" in columns else None
        judged = [i for i in (self._ii, self._si) if i is not None]
        judged += [index for index, _, _ in tests if index not in judged]
        # The memo key of a row: its judged cells (a tuple, one string, or None).
        self.pick: Callable[[list[str]], object] = itemgetter(*judged) if judged else _nothing
        self.codes: dict[object, int] = {}
        self._messages: dict[object, tuple[str, ...]] = {}

    def judge(self, cells: object, row: list[str]) -> int:
        """SEND, OUTSIDE, UNSUBSCRIBED_ROW or INVALID for `row`, remembered under `cells`."""
        judge, ii, si = self._judge, self._ii, self._si
        messages = []
        if ii is not None and (why := judge.interests_problem(row[ii])):
            messages.append(why)
        subscribed: bool | None = True
        if si is not None:
            subscribed = judge.subscribed(row[si])
            if subscribed is None:
                messages.append(status_problem(row[si]))
        if messages:
            code = INVALID
        elif not matches(self._tests, row):
            code = OUTSIDE
        else:
            code = SEND if subscribed else UNSUBSCRIBED_ROW
        if len(self.codes) < CACHE_LIMIT:
            self.codes[cells] = code
            self._messages[cells] = tuple(messages)
        else:  # past the limit, judge every time; keep this row's messages for messages()
            self._messages = {cells: tuple(messages)}
        return code

    def code(self, row: list[str]) -> int:
        """The verdict on `row` (for the few rows outside the fast path)."""
        cells = self.pick(row)
        code = self.codes.get(cells)
        return self.judge(cells, row) if code is None else code

    def messages(self, cells: object) -> tuple[str, ...]:
        """The errors behind an INVALID verdict on `cells`."""
        return self._messages.get(cells, ())


def _nothing(row: list[str]) -> None:
    return None
