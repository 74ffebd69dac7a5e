"""build_issue(): the one pipeline that build, preview and send all use."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from composer.errors import ComposeError, UsageError
from composer.issue import merge
from composer.issue.load import load_issue
from composer.issue.model import Issue
from composer.modes import MODES, Mode
from composer.project import STATE_DIR, Project, display_path
from composer.render import PREFERENCES_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER, templates, variants
from composer.render import cache as render_cache
from composer.render import html as html_render
from composer.render.checks import Check, RenderedEmail, run_checks
from composer.render.view import IssueView, build_view

# An issue's slug (its file name) becomes a folder, an outbox folder and a web address.
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
EMAIL_TEMPLATE = "issue.mjml.j2"
TEXT_TEMPLATE = "issue.txt.j2"
KB = 1024
RENDER_CACHE = "render-cache"  # in the state folder: see composer/render/cache.py


@dataclass(frozen=True)
class BuiltIssue(RenderedEmail):
    """Everything a build produces, in memory; write_build() puts it on disk."""

    slug: str
    source: Path
    view: IssueView
    web_html: str
    checks: tuple[Check, ...] = ()  # run once by build_issue(), in the order the preview lists them
    # The variant this is (edition x pillar interests) and the merge fields whose markers the
    # email holds, filled per reader by delivery/message.py (web_html has their defaults).
    language: str = ""
    interests: tuple[str, ...] = ()
    loaded: Issue | None = None  # the issue as its file says it, before translation and markers
    merge_fields: tuple[merge.Field, ...] = ()

    @property
    def subject(self) -> str:
        return self.issue.subject

    @property
    def written_subject(self) -> str:
        """The subject as the file writes it (merge fields as `{{ name }}`), for people."""
        return self.loaded.subject if self.loaded is not None else self.subject

    @property
    def defaults(self) -> tuple[str, ...]:
        """Each merge field's value for a reader whose columns are empty: its default or ''."""
        return tuple(f.default or "" for f in self.merge_fields)

    def filled(self, values: tuple[str, ...] | None = None) -> tuple[str, str, str]:
        """Subject, HTML and text with the merge fields filled (defaults unless `values`)."""
        values = self.defaults if values is None else values
        return (
            merge.fill(self.subject, values),
            merge.fill(self.email_html, values, escape=True),
            merge.fill(self.email_txt, values),
        )

    @property
    def warnings(self) -> list[str]:
        """The checks that warn: what `build` prints and `--strict` refuses."""
        return [check.message for check in self.checks if check.level == "warning"]


def _tracked(project: Project, slug: str, email_html: str) -> str:
    """The HTML part with its links as `tracking:` asks (once per issue, never per reader)."""
    tracking = project.newsletter.tracking
    if not tracking.clicks and not tracking.utm:
        return email_html
    from composer.delivery.tokens import load_secret
    from composer.events.clicks import track_links

    secret = load_secret(project) if tracking.clicks else b""
    return track_links(email_html, slug, project.newsletter, secret)


def build_issue(
    project: Project,
    issue_path: Path,
    mode: Mode = "auto",
    *,
    language: str | None = None,
    interests: tuple[str, ...] = (),
) -> BuiltIssue:
    """Validate and render one issue (one variant of it: edition x interests); nothing is written."""
    if mode not in MODES:
        raise UsageError(f"unknown mode '{mode}' (use {', '.join(MODES)})")
    if not issue_path.is_file():
        raise ComposeError("no such issue file", display_path(issue_path))
    issue_slug(issue_path)  # a file name that cannot be a slug is refused before reading it
    issue = load_issue(issue_path, project.newsletter, display_path(issue_path))
    return build_variant(project, issue_path, issue, mode, language=language, interests=interests)


def build_variant(
    project: Project,
    issue_path: Path,
    original: Issue,
    mode: Mode = "auto",
    *,
    language: str | None = None,
    interests: tuple[str, ...] = (),
    slots: merge.Slots | None = None,
    email_only: bool = False,
) -> BuiltIssue:
    """Render one variant of a loaded issue: `language` picks the edition, `interests` tailor it.

    `slots` numbers the merge fields; a send passes one for all its variants, and `email_only`:
    a send needs neither the web version nor the checks (the size guard still decides the mode).
    Nothing is written but the render cache (composer/render/cache.py).
    """
    with render_cache.using(project.root / STATE_DIR / RENDER_CACHE):
        return _render_variant(
            project, issue_path, original, mode, language, interests, slots, email_only
        )


def _render_variant(
    project: Project,
    issue_path: Path,
    original: Issue,
    mode: Mode,
    language: str | None,
    interests: tuple[str, ...],
    slots: merge.Slots | None,
    email_only: bool,
) -> BuiltIssue:
    slug = issue_slug(issue_path)
    newsletter = project.newsletter
    edition = variants.edition_for(original, newsletter, language)
    wanted = variants.interests_for(original, ";".join(interests))
    slots = slots or variants.issue_slots(original)
    issue = variants.mark_fields(variants.translate(original, edition), slots)
    translated = edition if edition != newsletter.default_language else None
    view = build_view(issue, newsletter, slug, anchors_from=original, edition=translated)
    web_view = view
    view = variants.tailor_view(view, wanted, original.tailor)
    folder = project.theme_dir
    css = templates.stylesheet(folder)
    budget = newsletter.max_email_kb * KB
    guard: list[Check] = []  # the size guard's verdicts, which no other check repeats

    full_html, full_size = "", -1
    if mode in ("auto", "full"):
        raw = _email_mjml_html(folder, view, "full", edition)
        full_size = len(raw.encode("utf-8"))
        # Inlining only adds bytes, so a raw full email over budget can skip the costly inlining.
        if mode == "full" or full_size <= budget:
            full_html = _tracked(project, slug, html_render.inline_css(raw, css))
            full_size = len(full_html.encode("utf-8"))
    chosen: Literal["full", "digest"]
    if mode == "full" or (mode == "auto" and full_html and full_size <= budget):
        chosen, email_html = "full", full_html
        if full_size > budget:
            guard.append(
                _over_budget(
                    f"OVER BUDGET: email.html is {_kb(full_size)} KB, above max_email_kb "
                    f"{newsletter.max_email_kb} KB; Gmail clips it and hides the unsubscribe link "
                    "(use --mode auto or digest)"
                )
            )
    else:
        chosen = "digest"
        email_html = _tracked(
            project,
            slug,
            html_render.inline_css(_email_mjml_html(folder, view, "digest", edition), css),
        )
        size = len(email_html.encode("utf-8"))
        if size > budget:
            guard.append(
                _over_budget(
                    f"OVER BUDGET even as a digest: email.html is {_kb(size)} KB, above "
                    f"{newsletter.max_email_kb} KB; shorten summaries or split the issue"
                )
            )
    email_txt = templates.render(
        folder,
        TEXT_TEMPLATE,
        v=view,
        mode=chosen,
        unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
        preferences_url=PREFERENCES_PLACEHOLDER,
        language=edition,  # the variant's edition (BCP 47), for the theme's own strings
    )
    if email_only:
        return BuiltIssue(
            slug=slug, source=issue_path, issue=issue, newsletter=newsletter, view=view,
            mode=chosen, email_html=email_html, email_txt=email_txt, web_html="",
            full_size=full_size, checks=tuple(guard), language=edition, interests=wanted,
            loaded=original, merge_fields=tuple(slots.fields),
        )  # fmt: skip
    web_mjml = templates.render(
        folder,
        EMAIL_TEMPLATE,
        v=web_view,
        mode="full",
        web=True,
        unsubscribe_url=None,
        preferences_url=None,
        language=edition,
    )
    web_html = html_render.with_theme(html_render.mjml_to_html(web_mjml, EMAIL_TEMPLATE), css)
    defaults = tuple(f.default or "" for f in slots.fields)
    web_html = merge.fill(web_html, defaults, escape=True)
    # The checks read what a reader without any column would get (their defaults).
    checks = run_checks(
        RenderedEmail(
            variants.mark_fields(variants.translate(original, edition), _DefaultSlots(slots)),
            newsletter,
            chosen,
            merge.fill(email_html, defaults, escape=True),
            merge.fill(email_txt, defaults),
            full_size,
        )
    )
    return BuiltIssue(
        slug=slug,
        source=issue_path,
        issue=issue,
        newsletter=newsletter,
        view=view,
        mode=chosen,
        email_html=email_html,
        email_txt=email_txt,
        web_html=web_html,
        full_size=full_size,
        checks=(*guard, *checks),
        language=edition,
        interests=wanted,
        loaded=original,
        merge_fields=tuple(slots.fields),
    )


class _DefaultSlots(merge.Slots):
    """Marks each field with its default: the issue as a reader with empty columns reads it."""

    def __init__(self, slots: merge.Slots) -> None:
        super().__init__()
        self._slots = slots

    def marker(self, item: merge.Field) -> str:
        return item.default or ""


def _over_budget(message: str) -> Check:
    return Check("size-budget", "warning", message)


def issue_slug(issue_path: Path) -> str:
    """The issue's slug, its file name without .yaml, if it is safe as a folder and web address."""
    slug = issue_path.stem
    if not _SLUG.match(slug):
        raise ComposeError(
            f"the file name '{issue_path.name}' cannot name an issue: it becomes a folder and a "
            "web address, so use letters, digits, - and _ (for example vol-37.yaml)",
            display_path(issue_path),
        )
    return slug


def inside(folder: Path, name: str) -> Path:
    """folder/name, proved to lie directly inside `folder` (no separator, no `..`)."""
    target = folder / name
    if target.resolve().parent != folder.resolve():
        raise ComposeError(f"refusing to write outside {display_path(folder)}: {name!r}")
    return target


def _email_mjml_html(folder: Path, view: IssueView, mode: str, language: str) -> str:
    """The email as MJML renders it, before inlining."""
    mjml = templates.render(
        folder,
        EMAIL_TEMPLATE,
        v=view,
        mode=mode,
        web=False,
        unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
        preferences_url=PREFERENCES_PLACEHOLDER,
        language=language,  # the variant's edition (BCP 47), for the theme's own strings
    )
    return html_render.mjml_to_html(mjml, EMAIL_TEMPLATE)


def _kb(size: int) -> str:
    return f"{size / KB:.1f}"


def edition_web_versions(project: Project, built: BuiltIssue) -> dict[str, str]:
    """The web version of each translation of the issue (language tag -> web.html)."""
    if built.loaded is None:
        return {}
    return {
        language: build_variant(project, built.source, built.loaded, language=language).web_html
        for language in variants.editions(built.loaded, project.newsletter)[1:]
    }


def write_build(
    built: BuiltIssue,
    out_dir: Path,
    sample_message: bytes,
    editions: dict[str, str] | None = None,
) -> Path:
    """Write the build to out_dir/<slug>/ all at once: a failed build leaves the old one intact.

    `editions`: the web versions of the issue's translations, each in `<slug>/<language>/`.
    """
    final = inside(out_dir, built.slug)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{built.slug}.", dir=out_dir))
    except OSError as exc:
        raise ComposeError(
            f"cannot write the build: {exc.strerror}", display_path(out_dir)
        ) from None
    try:
        _, email_html, email_txt = built.filled()
        files = {
            "email.html": email_html,
            "email.txt": email_txt,
            "web.html": built.web_html,
            "meta.json": json.dumps(_meta(built), indent=2, ensure_ascii=False) + "\n",
        }
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8", newline="")
        for language, web_html in (editions or {}).items():
            folder = inside(staging, language)
            folder.mkdir()
            (folder / "web.html").write_text(web_html, encoding="utf-8", newline="")
            folder.chmod(0o755)
        (staging / "message.eml").write_bytes(sample_message)
        staging.chmod(0o755)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{built.slug}.old.", dir=out_dir))
            os.replace(final, old / built.slug)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ComposeError(f"cannot write the build: {exc.strerror}", display_path(final)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _meta(built: BuiltIssue) -> dict[str, object]:
    issue = built.issue
    return {
        "slug": built.slug,
        "subject": merge.fill(issue.subject, built.defaults),
        "volume": issue.volume,
        "date": issue.date.isoformat(),
        "preheader": merge.fill(issue.preheader or "", built.defaults) or None,
        "mode": built.mode,
        "language": built.language,
        "email_bytes": built.email_size,
        "sections": len(issue.sections),
        "articles": built.view.article_count,
        "published": issue.published,  # the archive lists a draft only when this is true
    }
