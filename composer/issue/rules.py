"""Rules beyond shape: references resolve, links are absolute and safe, addresses are real syntax."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from composer.errors import Problem, suggest
from composer.issue import merge, sdg
from composer.issue.marks import MarkedYaml, Path_
from composer.issue.model import Newsletter

# What may never stand in a URL we write: it would end a header line or an HTML attribute.
_UNSAFE_URL_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029\"'<>\\`]")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_MARKDOWN_ISSUE_FIELDS = ("intro",)
_MARKDOWN_ARTICLE_FIELDS = ("body", "summary")


def url_problem(url: str, *, image: bool = False) -> str | None:
    """Why `url` cannot be used in an email, or None when it can."""
    allowed = ("http", "https") if image else ("http", "https", "mailto")
    stripped = url.strip()
    if not stripped:
        return "empty link"
    bad = _UNSAFE_URL_CHAR.search(stripped)
    if bad:
        return f"link {stripped!r} contains {_describe_char(bad.group())}; remove it or write it %-encoded"
    if stripped.startswith("#"):
        return f"link '{url}' points inside the page; use an absolute https:// URL"
    scheme = urlsplit(stripped).scheme.lower()
    if not scheme:
        return f"relative link '{url}'; use an absolute https:// URL"
    if scheme not in allowed:
        return f"link scheme '{scheme}:' is not allowed here (use {', '.join(allowed)})"
    if scheme in ("http", "https") and not urlsplit(stripped).netloc:
        return f"link '{url}' has no host"
    if scheme == "mailto" and email_problem(stripped[len("mailto:") :].split("?")[0]):
        return f"mailto link '{url}' has no valid address"
    return None


def _describe_char(char: str) -> str:
    if char == " ":
        return "a space"
    if char.isprintable():
        return f"the character {char}"
    return f"a line break or control character (U+{ord(char):04X})"


def email_problem(address: str) -> str | None:
    """Why `address` is not a valid e-mail address (syntax only, no DNS), or None."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def check_newsletter(doc: MarkedYaml) -> None:
    """Cross-field rules of newsletter.yaml, appended to doc.problems."""
    data = doc.data if isinstance(doc.data, dict) else {}
    for key in ("archive_url", "unsubscribe_url", "website"):
        value = data.get(key)
        if isinstance(value, str):
            why = url_problem(value, image=True)
            if why:
                doc.problem((key,), f"{key}: {why}")
    _check_unsubscribe_https(doc, data)
    if isinstance(data.get("unsubscribe_mailto"), str):
        _check_email(doc, ("unsubscribe_mailto",), data["unsubscribe_mailto"])
    language = data.get("language")
    if isinstance(language, str) and not _LANGUAGE.match(language):
        doc.problem(
            ("language",), f"language: '{language}' is not a BCP 47 tag such as en or sr-Latn"
        )
    languages = data.get("languages")
    for n, tag in enumerate(languages if isinstance(languages, list) else []):
        if isinstance(tag, str) and not _LANGUAGE.match(tag):
            doc.problem(("languages", n), f"languages: '{tag}' is not a BCP 47 tag such as sr-Latn")
    for box in ("from", "reply_to"):
        value = data.get(box)
        if isinstance(value, dict):
            _check_email(doc, (box, "email"), value.get("email"))
            local = str(value.get("email", "")).rpartition("@")[0]
            if not local.isascii() and (box, "email") not in doc.bad_paths:
                doc.problem(
                    (box, "email"),
                    f"{box}: the part before @ must be ASCII; most mail servers refuse others",
                )
    for key, contact in _items(data.get("contacts")):
        if isinstance(contact, dict):
            _check_email(doc, ("contacts", key, "email"), contact.get("email"))
    contacts = data.get("contacts")
    if not isinstance(contacts, dict):
        contacts = {}
    _check_contact_refs(doc, ("footer_contacts",), data.get("footer_contacts"), contacts)


def check_issue(doc: MarkedYaml, newsletter: Newsletter) -> None:
    """Cross-reference and link rules of an issue file, appended to doc.problems."""
    data = doc.data if isinstance(doc.data, dict) else {}
    contacts = newsletter.contacts
    for field in _MARKDOWN_ISSUE_FIELDS:
        _check_markdown(doc, (field,), data.get(field))
    _check_merge_fields(doc, (), data)
    _check_translations(doc, data, newsletter)
    _check_contact_refs(doc, ("footer_contacts",), data.get("footer_contacts"), contacts)
    for s, section in _enumerate(data.get("sections")):
        spath: Path_ = ("sections", s)
        pillar = section.get("pillar")
        if pillar is not None and str(pillar) not in newsletter.pillars:
            known = ", ".join(newsletter.pillars) or "none are defined in newsletter.yaml"
            doc.problem((*spath, "pillar"), f"unknown pillar '{pillar}' (pillars: {known})")
        _check_markdown(doc, (*spath, "intro"), section.get("intro"))
        _check_contact_refs(doc, (*spath, "contacts"), section.get("contacts"), contacts)
        for a, article in _enumerate(section.get("articles")):
            apath: Path_ = (*spath, "articles", a)
            for field in _MARKDOWN_ARTICLE_FIELDS:
                _check_markdown(doc, (*apath, field), article.get(field))
            _check_contact_refs(doc, (*apath, "contacts"), article.get("contacts"), contacts)
            for n, link in _enumerate(article.get("links")):
                url = link.get("url")
                if isinstance(url, str) and (why := url_problem(url)):
                    doc.problem((*apath, "links", n, "url"), why)
            image = article.get("image")
            src = image.get("src") if isinstance(image, dict) else None
            if isinstance(src, str) and (why := url_problem(src, image=True)):
                doc.problem((*apath, "image", "src"), f"image: {why}")
            _check_sdg(doc, (*apath, "sdg"), article.get("sdg"))


def _check_sdg(doc: MarkedYaml, path: Path_, targets: object) -> None:
    """Each entry is one of the 169 targets, or a goal 1-17 on its own ("SDG 16")."""
    if not isinstance(targets, list):
        return  # the loader made every value a list; anything else the model has reported
    for n, target in enumerate(targets):
        if isinstance(target, str) and (why := sdg.problem(target)):
            doc.problem((*path, n), why)


# Where merge fields may stand (a path's last key); everywhere else `{{` is refused.
_MERGE_KEYS = frozenset({"subject", "preheader", "intro", "body", "summary"})


def _check_merge_fields(doc: MarkedYaml, path: Path_, value: object) -> None:
    """Merge fields only in the texts that take them, and only in the two allowed forms."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_merge_fields(doc, (*path, key), item)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _check_merge_fields(doc, (*path, n), item)
    elif isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value):
        key = next((p for p in reversed(path) if isinstance(p, str)), "")
        try:
            pieces = merge.parse(value)
        except merge.MergeError as exc:
            line, col = _locate_offset(doc, path, value, exc.offset)
            doc.problems.append(Problem(str(exc), doc.file, line, col))
            return
        if key not in _MERGE_KEYS and any(isinstance(p, merge.Field) for p in pieces):
            offset = value.find("{{")
            line, col = _locate_offset(doc, path, value, offset)
            doc.problems.append(
                Problem(
                    f"'{key}' cannot hold merge fields (only subject, preheader, intro, body "
                    'and summary can); write a literal {{ as {{ "{{" }}',
                    doc.file,
                    line,
                    col,
                )
            )


def _locate_offset(
    doc: MarkedYaml, path: Path_, text: str, offset: int
) -> tuple[int | None, int | None]:
    """The file line and column of text[offset:] inside the scalar at `path`."""
    line, col = doc.spot(path)
    if line is None or col is None:
        return line, col
    end = text.find("\n", offset)
    needle = text[offset : end if end >= 0 else len(text)][:40]
    nth = text[:offset].count(needle)  # the same snippet earlier in the value
    spot = doc.spots.get(path)
    start = line + 1 if spot is not None and spot.block else line
    last = min(len(doc.lines), start + text.count("\n") + 2)
    for number in range(start, last + 1):
        from_col = col - 1 if number == line else 0
        found = doc.lines[number - 1].find(needle, from_col)
        while found >= 0:
            if nth == 0:
                return number, found + 1
            nth -= 1
            found = doc.lines[number - 1].find(needle, found + 1)
    return line, col


def _check_translations(doc: MarkedYaml, data: dict, newsletter: Newsletter) -> None:
    """Each translation is of an offered language and has the shape of the original."""
    translations = data.get("translations")
    if not isinstance(translations, dict):
        return
    offered = newsletter.languages
    found = data.get("sections")
    sections: list[object] = found if isinstance(found, list) else []
    for language, text in translations.items():
        tpath: Path_ = ("translations", language)
        if language not in offered or language == newsletter.default_language:
            where = (
                "it is the default edition"
                if language == newsletter.default_language
                else f"offered: {', '.join(offered)}"
                if offered
                else "add `languages:` to newsletter.yaml"
            )
            doc.problem(
                tpath, f"translation '{language}' is not an edition to add ({where})", key=True
            )
            continue
        if not isinstance(text, dict):
            continue
        _check_markdown(doc, (*tpath, "intro"), text.get("intro"))
        given = text.get("sections")
        if not isinstance(given, list):
            continue
        if len(given) != len(sections):
            doc.problem(
                (*tpath, "sections"),
                f"translation '{language}' has {len(given)} sections, the original has "
                f"{len(sections)}: give one entry per section, {{}} for one left as written",
            )
            continue
        for s, (original, translated) in enumerate(zip(sections, given, strict=True)):
            if not isinstance(translated, dict) or not isinstance(original, dict):
                continue
            spath: Path_ = (*tpath, "sections", s)
            _check_markdown(doc, (*spath, "intro"), translated.get("intro"))
            articles = translated.get("articles")
            originals = original.get("articles")
            if not isinstance(articles, list) or not isinstance(originals, list):
                continue
            if len(articles) != len(originals):
                doc.problem(
                    (*spath, "articles"),
                    f"translation '{language}', section {s + 1} has {len(articles)} articles, "
                    f"the original has {len(originals)}: give one entry per article, "
                    "{} for one left as written",
                )
                continue
            for a, article in _enumerate(articles):
                for field in _MARKDOWN_ARTICLE_FIELDS:
                    _check_markdown(doc, (*spath, "articles", a, field), article.get(field))


def _check_unsubscribe_https(doc: MarkedYaml, data: dict[str, object]) -> None:
    """RFC 8058 one-click unsubscribe needs an https:// URL; the default hangs off archive_url."""
    key = "unsubscribe_url" if isinstance(data.get("unsubscribe_url"), str) else "archive_url"
    value = data.get(key)
    if not isinstance(value, str) or value.strip().lower().startswith("https://"):
        return
    if key == "archive_url" and not value.strip().lower().startswith("http://"):
        return  # not a web address at all: url_problem has said so
    reason = "unsubscribe links must use https:// (RFC 8058 one-click unsubscribe)"
    if key == "archive_url":
        reason += "; they hang off archive_url unless unsubscribe_url is given"
    doc.problem((key,), f"{key}: {reason}")


def _check_email(doc: MarkedYaml, path: Path_, value: object) -> None:
    if path in doc.bad_paths:
        return
    if isinstance(value, str) and (why := email_problem(value)):
        doc.problem(path, f"invalid e-mail address '{value}': {why}")


def _check_contact_refs(
    doc: MarkedYaml, path: Path_, refs: object, contacts: Mapping[str, object]
) -> None:
    if not isinstance(refs, list):
        return
    for n, ref in enumerate(refs):
        if isinstance(ref, str) and ref not in contacts:
            hint = suggest(ref, contacts)
            suggestion = (
                f" (did you mean '{hint}'?)"
                if hint
                else " (add it under contacts: in newsletter.yaml)"
            )
            doc.problem((*path, n), f"unknown contact '{ref}'{suggestion}")
        elif isinstance(ref, dict) and isinstance(ref.get("email"), str):
            _check_email(doc, (*path, n, "email"), ref["email"])


def _check_markdown(doc: MarkedYaml, path: Path_, text: object) -> None:
    """Report each bad link in a Markdown field at the line it stands on."""
    if not isinstance(text, str):
        return
    from composer.render import markdown  # only issue files have Markdown: keep other commands lean

    for kind, target in markdown.link_targets(text):
        why = url_problem(target, image=kind == "image")
        if why:
            line, col = _locate_in_block(doc, path, text, target)
            doc.problems.append(Problem(why, doc.file, line, col))


def _locate_in_block(
    doc: MarkedYaml, path: Path_, text: str, target: str
) -> tuple[int | None, int | None]:
    """The file line and column of `target` inside a scalar that starts at `path`."""
    line, col = doc.spot(path)
    if line is None:
        return None, None
    spot = doc.spots.get(path)
    start = line + 1 if spot is not None and spot.block else line
    needle = f"({target}" if target else "]("
    for number in range(start, min(len(doc.lines), start + text.count("\n") + 2) + 1):
        found = doc.lines[number - 1].find(needle)
        if found >= 0:
            return number, found + 2 if target else found + 1
    return line, col


def _enumerate(items: object) -> list[tuple[int, dict]]:
    if not isinstance(items, list):
        return []
    return [(n, item) for n, item in enumerate(items) if isinstance(item, dict)]


def _items(mapping: object) -> list[tuple[str, object]]:
    return list(mapping.items()) if isinstance(mapping, dict) else []
