"""`/preferences/<token>`: a reader's lists, pillar interests and language, each changeable.

The token is the one of the unsubscribe link (it names a list and the address). GET shows,
POST saves and records every change in consent.csv: joining a list or changing interests or
language as `preferences`, leaving a list as `unsubscribe`, "unsubscribe from everything" as a
suppression, and choosing a list again while suppressed as `resubscribe`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from composer.audience.consent import ConsentRecord
from composer.audience.membership import (
    Change,
    change_list,
    is_subscribed,
    lift_suppression,
    memberships,
)
from composer.audience.suppressions import add_suppressions, is_suppressed
from composer.render.i18n import N_, display_name
from composer.web.pages import translate
from composer.web.readers import ReaderSite, chosen, csrf_field, mask_address, read_form

FORM = "preferences"
Said = tuple[str, dict[str, str]]  # a catalogue message for the "Saved." box and its parameters


@dataclass
class Standing:
    """What the reader receives now."""

    email: str
    offered: list[str]  # lists shown on the page
    subscribed: list[str]  # of those, the ones they receive
    interests: list[str]
    language: str
    suppressed: bool
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    recorded_language: str | None = None  # the `language` cell of their row, when it has one


class PreferencesEndpoints:
    """GET and POST `/preferences/<token>`."""

    def __init__(self, site: ReaderSite) -> None:
        self.site = site
        news = site.project.newsletter
        self.public_lists = list(news.signup.lists) if news.signup else []
        self.pillars = {key: pillar.title for key, pillar in news.pillars.items()}
        self.default_language = news.language
        offered = getattr(news, "languages", None)  # `languages:` (second round), when present
        self.languages = [str(code) for code in offered] if offered else [news.language]

    def _decode(self, request: Request) -> tuple[str, str] | Response:
        return self.site.reader_of(
            request,
            N_("This link is not valid"),
            N_("The link may have been cut or changed. Use the complete link from the newsletter."),
        )

    def _standing(self, list_name: str, email: str) -> Standing:
        project = self.site.project
        rows = memberships(project, email)
        offered = list(dict.fromkeys([*self.public_lists, list_name, *rows]))
        suppressed = is_suppressed(project, email)
        subscribed = [n for n in offered if n in rows and is_subscribed(rows[n])]
        source = next((rows[n] for n in subscribed), None) or next(iter(rows.values()), {})
        interests = [p.strip() for p in source.get("interests", "").split(";")]
        recorded = source.get("language", "").strip()
        return Standing(
            email=email,
            offered=offered,
            subscribed=[] if suppressed else subscribed,
            interests=[p for p in self.pillars if p in interests],
            language=recorded or self.default_language,
            suppressed=suppressed,
            rows=rows,
            recorded_language=recorded or None,
        )

    def _page(
        self, request: Request, standing: Standing, status: int = 200, **extra: object
    ) -> Response:
        return self.site.page(
            request,
            "preferences.html",
            status,
            language=self.site.language(request, standing.recorded_language),
            masked=mask_address(standing.email),
            lists=standing.offered,
            chosen_lists=standing.subscribed,
            interests=self.pillars,
            chosen_interests=standing.interests,
            languages=self.languages,
            language_names={code: display_name(code) for code in self.languages},
            chosen_language=standing.language,
            suppressed=standing.suppressed,
            **extra,
        )

    async def show(self, request: Request) -> Response:
        """GET: the reader's choices as they stand; nothing changes."""
        decoded = self._decode(request)
        if isinstance(decoded, Response):
            return decoded
        standing = await run_in_threadpool(self._standing, *decoded)
        return self._page(request, standing, saved=[])

    async def save(self, request: Request) -> Response:
        """POST: save the choices (or unsubscribe from everything); record each change."""
        decoded = self._decode(request)
        if isinstance(decoded, Response):
            return decoded
        form = await read_form(request)
        if form is None or not self.site.csrf.verify(request, csrf_field(form)):
            return self.site.forged(request)
        list_name, email = decoded
        standing = await run_in_threadpool(self._standing, list_name, email)
        message: list[Said]
        if form.get("action") == "unsubscribe-all":
            records = await run_in_threadpool(self._leave_all, request, standing)
            message = [(N_("You will receive no more mailings."), {})]
        else:
            lists = chosen(form, "lists", standing.offered)
            interests = chosen(form, "interests", list(self.pillars))
            language = form.get("language")
            if not isinstance(language, str) or language not in self.languages:
                language = standing.language
            records, message = await run_in_threadpool(
                self._change, request, standing, lists, interests, language
            )
        await self.site.write_records(records)
        request.state.log_note = f"preferences {len(records)} change(s) {mask_address(email)}"
        standing = await run_in_threadpool(self._standing, list_name, email)
        # Said in the language of the page that follows (a reader may just have chosen it).
        language = self.site.language(request, standing.recorded_language)
        said = message or [(N_("Nothing needed changing."), {})]
        saved = [translate(language, text, **params) for text, params in said]
        return self._page(request, standing, saved=saved)

    def _leave_all(self, request: Request, standing: Standing) -> list[ConsentRecord]:
        today = dt.datetime.now(dt.UTC).date().isoformat()
        add_suppressions(self.site.project, [(standing.email, "unsubscribed (preferences)", today)])
        lists = standing.subscribed or [""]
        return [
            self.site.record(request, standing.email, name, "unsubscribe", FORM) for name in lists
        ]

    def _change(
        self,
        request: Request,
        standing: Standing,
        lists: list[str],
        interests: list[str],
        language: str,
    ) -> tuple[list[ConsentRecord], list[Said]]:
        project, email = self.site.project, standing.email
        records: list[ConsentRecord] = []
        said: list[Said] = []
        if standing.suppressed and lists and lift_suppression(project, email):
            records += [self.site.record(request, email, n, "resubscribe", FORM) for n in lists]
            said.append((N_("You are subscribed again."), {}))
        cells: list[tuple[str, str]] = []
        if self.pillars:
            cells.append(("interests", ";".join(interests)))
        if language != self.default_language or any(
            "language" in r for r in standing.rows.values()
        ):
            cells.append(("language", language))
        for name in standing.offered:
            if name in lists:
                known = [r["name"] for r in standing.rows.values() if r.get("name")]
                row = standing.rows.get(name, {})
                join = [("name", known[0])] if known and not row.get("name") else []
                (result,) = change_list(project, name, [Change(email, "join", (*join, *cells))])
                if result in ("added", "updated"):
                    records.append(self.site.record(request, email, name, "preferences", FORM))
                    done = (
                        N_("%(list)s: subscribed.")
                        if result == "added"
                        else N_("%(list)s: updated.")
                    )
                    said.append((done, {"list": name}))
            elif name in standing.rows and is_subscribed(standing.rows[name]):
                (result,) = change_list(project, name, [Change(email, "leave")])
                if result == "left":
                    records.append(self.site.record(request, email, name, "unsubscribe", FORM))
                    said.append((N_("%(list)s: unsubscribed."), {"list": name}))
        return records, said
