"""Client support: the HTML and CSS of a built email that major mail clients lack (caniemail data).

The email is read as each client receives it: what sits inside `<!--[if mso | IE]>` comments is
Outlook's alone and never parsed, what sits inside `<!--[if !mso]><!-->` is hidden from Outlook
for Windows, and a few patterns MJML generates on purpose are allowed (`MJML_PATTERNS`).
The data is vendored in composer/render/caniemail/ (see its SOURCE.md for how to refresh it).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import resources
from typing import Literal

Level = Literal["ok", "info", "warning"]  # as composer.render.checks.Level
CheckItem = tuple[str, Level, str]  # (code, level, message); run_checks makes each a Check
CODE = "client-support"
OUTLOOK_WINDOWS = "outlook.windows"
_EXAMPLES = 2  # how many uses of a feature a message quotes

# Missing in a client, these break the layout rather than its looks: a warning, not a note.
LAYOUT_BREAKING = frozenset(
    {
        "css-position",
        "css-display-flex",
        "css-display-grid",
        "css-grid-template",
        "css-flex-direction",
        "css-flex-wrap",
        "css-background-image",  # only without a background colour to fall back on
        "html-video",
        "html-audio",
        "html-svg",
        "html-object",
    }
)
# The document's frame, which every email has and no client can do without: never reported.
_FRAME = frozenset({"html", "head", "body", "title", "meta", "br", "tbody", "tr", "td", "th"})


@dataclass(frozen=True)
class Feature:
    """One caniemail feature and, per client, its verdict: y, a (partial), n or u (unknown)."""

    slug: str
    title: str
    category: str
    url: str
    support: dict[str, str]
    notes: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class SupportData:
    version: str
    updated: str
    clients: dict[str, str]  # caniemail's family.platform -> the name readers know
    features: dict[str, Feature]


@functools.cache
def load_support_data() -> SupportData:
    """The vendored caniemail data, read from the installed package."""
    text = resources.files("composer.render").joinpath("caniemail", "data.json").read_text("utf-8")
    raw = json.loads(text)
    features = {
        slug: Feature(
            slug=slug,
            title=entry["title"],
            category=entry["category"],
            url=entry["url"],
            support={client: verdict["support"] for client, verdict in entry["support"].items()},
            notes={
                client: tuple(verdict["notes"])
                for client, verdict in entry["support"].items()
                if verdict.get("notes")
            },
        )
        for slug, entry in raw["features"].items()
    }
    source = raw["source"]
    return SupportData(source["version"], source["data_updated"], raw["clients"], features)


@dataclass(frozen=True)
class Use:
    """One use of a feature in the email: where it is, and which clients never see it."""

    slug: str
    where: str  # e.g. `<div class="page"> style: position:absolute`, matched by MJML_PATTERNS
    unseen_by: frozenset[str] = frozenset()  # clients shown something else instead
    fallback: bool = False  # a background image with a background colour under it


@dataclass(frozen=True)
class Allowed:
    """A pattern MJML generates on purpose: quiet for `slugs` and `clients` (empty: all)."""

    slugs: frozenset[str]
    where: re.Pattern[str]
    reason: str
    clients: frozenset[str] = frozenset()


MJML_PATTERNS: tuple[Allowed, ...] = (
    Allowed(
        frozenset({"css-at-media", "css-width", "css-max-width", "css-important"}),
        re.compile(r"^<style> @media only screen and \(min-width:\s*\d+px\)($| \.mj-column-)"),
        "MJML's columns are phone-first: a client without media queries shows one column, and "
        "Outlook for Windows gets the fixed widths of the `<!--[if mso | IE]>` tables",
    ),
    Allowed(
        frozenset(
            {"css-selector-descendant", "css-selector-class", "css-width", "css-max-width"}
            | {"css-important"}
        ),
        re.compile(r"^<style media=[^>]*> \.moz-text-html \.mj-column-"),
        "MJML's fix for Thunderbird, which alone applies it",
    ),
    Allowed(
        frozenset(),
        re.compile(r"^<style> (#outlook a|body|table, td|img|p)( \{|$)"),
        "MJML's reset rules in <head> (`#outlook a` undoes a bar Outlook.com adds): a client that "
        "ignores one shows its own default",
    ),
    Allowed(
        frozenset({"html-doctype"}),
        re.compile(r"^<!doctype html>$", re.IGNORECASE),
        "MJML's HTML5 doctype: a client that drops it lays out the same tables",
    ),
    Allowed(
        frozenset({"css-word-spacing"}),
        re.compile(r"^<body> style: word-spacing:normal$"),
        "MJML's reset on <body>: a client that ignores it keeps its default spacing",
    ),
    Allowed(
        frozenset(
            {"css-display-none", "css-max-height", "css-max-width", "css-opacity", "css-overflow"}
            | {"css-display", "css-font-size", "css-line-height"}
        ),
        re.compile(r'^<div style="display:none"> style: '),
        "MJML's hidden preheader hides the text several ways at once: a client that drops one "
        "still hides it",
    ),
    Allowed(
        frozenset({"css-max-width", "css-display", "css-width", "css-direction"}),
        re.compile(r"after an mso table"),
        "MJML's sections and columns: Outlook for Windows lays out the table in the "
        "`<!--[if mso | IE]>` comment just before them, with fixed widths",
        frozenset({OUTLOOK_WINDOWS}),
    ),
    Allowed(
        frozenset({"html-aria-label", "html-role", "html-lang", "html-dir"}),
        re.compile(r'^<div (class="[^"]*" )?role="article" aria-roledescription="email">'),
        "MJML's wrapper names the email for screen readers; a client that strips it changes "
        "nothing visible",
    ),
)


# Enhancements a theme adds on purpose: a client without them shows the plain version, as
# designed. The default theme uses each (composer/theme/); a project theme may too.
ENHANCEMENTS: tuple[Allowed, ...] = (
    Allowed(
        frozenset({"css-at-media", "css-at-media-prefers-color-scheme"}),
        re.compile(r"^<style> @media \(prefers-color-scheme: ?dark\)"),
        "dark-mode colours: a client without them shows the light colours, which pass WCAG AA",
    ),
    Allowed(
        frozenset({"html-meta-color-scheme"}),
        re.compile(r'^<meta name="color-scheme">'),
        "tells the clients that honour it that the email has its own dark colours",
    ),
    Allowed(
        frozenset({"css-overflow-wrap", "css-word-break"}),
        re.compile(r" style: (overflow-wrap:anywhere|word-break:break-word)$"),
        "breaks long words and URLs on phones where supported; elsewhere they run on or scroll",
    ),
    Allowed(
        frozenset({"html-aria-hidden"}),
        re.compile(r"^<span> aria-hidden$"),
        "keeps a decorative arrow from being read aloud; a client that strips it only adds a word",
    ),
)
ALLOWED = MJML_PATTERNS + ENHANCEMENTS


# -- what the email uses ------------------------------------------------------------------

_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_FUNCTIONS = {
    "linear-gradient": "css-linear-gradient",
    "radial-gradient": "css-radial-gradient",
    "conic-gradient": "css-conic-gradient",
    "calc": "css-unit-calc",
    "var": "css-variables",
    "clamp": "css-function-clamp",
    "min": "css-function-min",
    "max": "css-function-max",
    "rgb": "css-rgb",
    "rgba": "css-rgba",
    "light-dark": "css-function-light-dark",
    "lch": "css-modern-color",
    "oklch": "css-modern-color",
    "lab": "css-modern-color",
    "oklab": "css-modern-color",
}
_FUNCTION = re.compile(r"(?<![\w-])([a-z-]+)\(")
_UNIT = re.compile(r"(?<![\w#.-])\d*\.?\d+(rem|vh|vw|vmin|vmax|ch|ex|cm|mm|in|pc)\b")
_PSEUDO = re.compile(r"(::?)([a-z-]+)")
_PSEUDO_ELEMENTS = frozenset({"before", "after", "first-letter", "first-line", "marker"})
_MEDIA_FEATURES = {
    "prefers-color-scheme": "css-at-media-prefers-color-scheme",
    "prefers-reduced-motion": "css-at-media-prefers-reduced-motion",
    "orientation": "css-at-media-orientation",
    "hover": "css-at-media-hover",
    "device-pixel-ratio": "css-at-media-device-pixel-ratio",
}
_AT_RULES = {
    "@font-face": "css-at-font-face",
    "@import": "css-at-import",
    "@keyframes": "css-at-keyframes",
    "@supports": "css-at-supports",
}
# Properties caniemail files under another name; longhands fall back to their family's slug.
_PROPERTIES = {
    **{side: "css-left-right-top-bottom" for side in ("left", "right", "top", "bottom")},
    **{name: "css-gap" for name in ("gap", "row-gap", "column-gap")},
    **{name: "css-inset" for name in ("inset", "inset-inline", "inset-block")},
    "column-count": "css-column-count",
    **{
        f"{box}-{axis}": f"css-{box}-inline-block"
        for box in ("margin", "padding")
        for axis in ("inline", "block")
    },
    **{
        f"{box}-{axis}-{end}": f"css-{box}-{axis}-start-end"
        for box in ("margin", "padding")
        for axis in ("inline", "block")
        for end in ("start", "end")
    },
    **{f"border-{axis}": "css-border-inline-block" for axis in ("inline", "block")},
}
_FAMILIES = frozenset(
    {"margin", "padding", "border", "background", "overflow", "outline", "transition", "animation"}
)
_BY_VALUE = frozenset({"flex-direction", "flex-wrap"})  # only some values are features
_ELEMENTS = {
    **{f"h{n}": "html-h1-h6" for n in range(1, 7)},
    **{tag: "html-lists" for tag in ("ul", "ol", "li", "dl", "dt", "dd")},
    **{tag: "html-image-maps" for tag in ("map", "area")},
    **{
        tag: "html-semantics"
        for tag in ("article", "aside", "details", "figcaption", "figure", "footer", "header")
        + ("main", "mark", "nav", "section", "summary", "time")
    },
}
# Attributes caniemail has data for under their own name (html-align ...), besides aria-*.
_PLAIN_ATTRIBUTES = frozenset(
    {"align", "background", "cellpadding", "cellspacing", "dir", "height", "hidden", "lang"}
    | {"popover", "required", "role", "target", "valign", "width"}
)
_ATTRIBUTES = {
    "loading": "html-loading-attribute",
    "srcset": "html-srcset",
    "sizes": "html-srcset",
    "usemap": "html-image-maps",
    "inert": "css-inert-attribute",
}


def _property_features(name: str, value: str) -> Iterator[str]:
    """caniemail slugs for one declaration: its property, then notable values."""
    if name.startswith(("mso-", "-")):
        return  # Outlook's own properties and vendor prefixes: no client breaks on them
    known = load_support_data().features
    if name in _PROPERTIES:
        yield _PROPERTIES[name]
    elif name.startswith("grid-template"):
        yield "css-grid-template"
    elif name.startswith("column-"):
        yield "css-column-layout-properties"
    elif name.startswith("border") and name.endswith("radius"):
        yield "css-border-radius"
    elif f"css-{name}" in known and name not in _BY_VALUE:
        yield f"css-{name}"
    elif name.split("-", 1)[0] in _FAMILIES:
        yield f"css-{name.split('-', 1)[0]}"
    if name == "display":
        shown = value.split()[0] if value.split() else ""
        if shown in ("flex", "inline-flex"):
            yield "css-display-flex"
        elif shown in ("grid", "inline-grid"):
            yield "css-display-grid"
        elif shown == "none":
            yield "css-display-none"
    elif name == "flex-direction" and value.startswith("column"):
        yield "css-flex-direction"
    elif name == "flex-wrap" and value.startswith("wrap"):
        yield "css-flex-wrap"
    elif name in ("background", "background-image") and "url(" in value:
        yield "css-background-image"
    for function in _FUNCTION.findall(value):
        if function in _FUNCTIONS:
            yield _FUNCTIONS[function]
    for unit in _UNIT.findall(value):
        yield f"css-unit-{unit}"
    if "!important" in value:
        yield "css-important"


def _declarations(block: str) -> list[tuple[str, str]]:
    """(property, value) pairs of a declaration block, lower-cased."""
    pairs = []
    for part in block.split(";"):
        name, colon, value = part.partition(":")
        if colon and name.strip():
            pairs.append((name.strip().lower(), value.strip().lower()))
    return pairs


def _declaration_uses(block: str, where: str, unseen_by: frozenset[str]) -> Iterator[Use]:
    """Every use of a declaration block; a background image over a colour has a fallback."""
    pairs = _declarations(block)
    coloured = any(
        name == "background-color" or (name == "background" and not value.startswith("url("))
        for name, value in pairs
    )
    for name, value in pairs:
        for slug in _property_features(name, value):
            shown = f"{where}{name}:{value}"
            yield Use(slug, shown, unseen_by, fallback=slug == "css-background-image" and coloured)


def _css_blocks(css: str) -> Iterator[tuple[str, str | None]]:
    """The top-level statements of a stylesheet: (prelude, body), body None for `@import ...;`."""
    depth, start, body_start, prelude = 0, 0, 0, ""
    for index, char in enumerate(css):
        if char == "{":
            if depth == 0:
                prelude, body_start = css[start:index].strip(), index + 1
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                yield prelude, css[body_start:index]
                start = index + 1
        elif char == ";" and depth == 0:
            if css[start:index].strip():
                yield css[start:index].strip(), None
            start = index + 1


def _selector_features(selectors: str) -> Iterator[str]:
    if "," in selectors:
        yield "css-selector-grouping"
    for selector in selectors.split(","):
        for colons, name in _PSEUDO.findall(selector):
            kind = "element" if colons == "::" or name in _PSEUDO_ELEMENTS else "class"
            yield f"css-pseudo-{kind}-{name}"
        plain = _PSEUDO.sub("", selector).strip()
        for mark, slug in (
            ("#", "css-selector-id"),
            ("[", "css-selector-attribute"),
            ("*", "css-selector-universal"),
            (">", "css-selector-child"),
            ("+", "css-selector-adjacent-sibling"),
            ("~", "css-selector-general-sibling"),
            (".", "css-selector-class"),
        ):
            if mark in plain:
                yield slug
        compounds = re.split(r"\s*[>+~]\s*|\s+", plain)
        if len(re.split(r"\s+", plain)) > 1 and not re.search(r"[>+~]", plain):
            yield "css-selector-descendant"
        if any(re.match(r"[a-z]", c) for c in compounds):
            yield "css-selector-type"
        if any(re.search(r"\w[.#\[]", c) for c in compounds):
            yield "css-selector-chaining"


def stylesheet_uses(css: str, where: str, unseen_by: frozenset[str] = frozenset()) -> list[Use]:
    """Every feature a `<style>` element uses: at-rules, media features, selectors, properties."""
    uses: list[Use] = []
    for prelude, body in _css_blocks(_COMMENT.sub("", css)):
        head = " ".join(prelude.lower().split())
        rule = head.split()[0] if head else ""
        if rule == "@media":
            uses.append(Use("css-at-media", f"{where}{head}", unseen_by))
            for media, slug in _MEDIA_FEATURES.items():
                if media in head:
                    uses.append(Use(slug, f"{where}{head}", unseen_by))
            for inner, block in _css_blocks(body or ""):
                selector = " ".join(inner.split())
                inside = f"{where}{head} {selector}"
                uses += [Use(s, inside, unseen_by) for s in _selector_features(selector)]
                uses += _declaration_uses(block or "", f"{inside} {{ ", unseen_by)
        elif rule in _AT_RULES:
            uses.append(Use(_AT_RULES[rule], f"{where}{head}", unseen_by))
        elif rule.startswith("@"):
            continue  # @charset, @page, @namespace: no client data
        else:
            selector = " ".join(prelude.split())
            inside = f"{where}{selector}"
            uses += [Use(s, inside, unseen_by) for s in _selector_features(selector)]
            uses += _declaration_uses(body or "", f"{inside} {{ ", unseen_by)
    return uses


class _UseScan(HTMLParser):
    """One pass over the email: elements, attributes, inline styles and `<style>` elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.uses: list[Use] = []
        self._not_mso = 0  # inside <!--[if !mso]><!--> ... <!--<![endif]-->
        self._after_mso = False  # the last thing seen was an <!--[if mso | IE]> table or cell
        self._style: tuple[str, list[str]] | None = None  # (where, text) of an open <style>

    @property
    def _unseen_by(self) -> frozenset[str]:
        return frozenset({OUTLOOK_WINDOWS}) if self._not_mso else frozenset()

    def handle_comment(self, data: str) -> None:
        if data.startswith("[if !mso"):
            self._not_mso += 1
        elif data.startswith("<![endif]") and self._not_mso:
            self._not_mso -= 1
        elif data.startswith("[if mso") and re.search(r"<(table|td)\b", data):
            self._after_mso = True

    def handle_decl(self, decl: str) -> None:
        if decl.lower().startswith("doctype html"):
            self.uses.append(Use("html-doctype", f"<!{decl}>"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        after_mso, self._after_mso = self._after_mso, False
        if tag == "style":
            media = f" media={values['media']}" if "media" in values else ""
            self._style = (f"<style{media}> ", [])
            self.uses.append(Use("html-style", f"<style{media}>", self._unseen_by))
            return
        shown = _describe(tag, values) + (" after an mso table" if after_mso else "")
        for slug in _element_features(tag, values):
            self.uses.append(Use(slug, shown, self._unseen_by))
        for name, value in values.items():
            for slug in _attribute_features(tag, name, value):
                self.uses.append(Use(slug, f"{shown} {name}", self._unseen_by))
        if values.get("style"):
            where = f"{shown} style: "
            self.uses += _declaration_uses(values["style"], where, self._unseen_by)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style:
            where, text = self._style
            self.uses += stylesheet_uses("".join(text), where, self._unseen_by)
            self._style = None

    def handle_data(self, data: str) -> None:
        if self._style:
            self._style[1].append(data)
        elif data.strip():
            self._after_mso = False


def _describe(tag: str, values: dict[str, str]) -> str:
    """The start tag as a message quotes it: its class, role and label; long values cut."""
    kept = " ".join(
        f'{name}="{values[name][:40]}"'
        for name in ("class", "role", "aria-roledescription", "type")
        if values.get(name)
    )
    if tag == "div" and values.get("style", "").startswith("display:none;"):
        return '<div style="display:none">'  # MJML's hidden preheader, named for MJML_PATTERNS
    if tag == "meta" and values.get("name"):
        return f'<meta name="{values["name"]}">'
    return f"<{tag} {kept}>" if kept else f"<{tag}>"


def _element_features(tag: str, values: dict[str, str]) -> Iterator[str]:
    if tag in _FRAME:
        return
    if tag in ("input", "button"):
        yield f"html-{tag}-{values.get('type', 'text' if tag == 'input' else 'submit')}"
    elif tag == "meta" and values.get("name") == "color-scheme":
        yield "html-meta-color-scheme"
    else:
        yield _ELEMENTS.get(tag, f"html-{tag}")


def _attribute_features(tag: str, name: str, value: str) -> Iterator[str]:
    if tag == "a" and name == "href":
        if value.startswith("#"):
            yield "html-anchor-links"
        elif value.lower().startswith("mailto:"):
            yield "html-mailto-links"
    elif tag == "meta" and name == "name" and value == "color-scheme":
        yield "html-meta-color-scheme"
    elif name in _ATTRIBUTES:
        yield _ATTRIBUTES[name]
    elif name.startswith("aria-") or name in _PLAIN_ATTRIBUTES:
        yield f"html-{name}"


def collect_uses(html: str) -> list[Use]:
    """Every HTML and CSS feature the email uses that caniemail has data for."""
    scan = _UseScan()
    scan.feed(html)
    scan.close()
    known = load_support_data().features
    return [use for use in scan.uses if use.slug in known]


# -- what the clients lack ----------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A feature some major client lacks or supports in part, with where the email uses it."""

    feature: Feature
    missing: tuple[str, ...]  # client ids with "n"
    partial: tuple[str, ...]  # client ids with "a"
    uses: tuple[Use, ...]
    allowed: tuple[str, ...] = ()  # the reasons (ALLOWED) that quieted some uses

    @property
    def breaks_layout(self) -> bool:
        """A missing feature that breaks the layout: a warning."""
        if not self.missing or self.feature.slug not in LAYOUT_BREAKING:
            return False
        return not all(use.fallback for use in self.uses)


def _allowed(use: Use, client: str) -> str | None:
    for pattern in ALLOWED:
        if (
            (not pattern.slugs or use.slug in pattern.slugs)
            and pattern.where.search(use.where)
            and (not pattern.clients or client in pattern.clients)
        ):
            return pattern.reason
    return None


def find_client_gaps(html: str) -> list[Finding]:
    """Per feature the email uses, the major clients that lack it or support it in part."""
    data = load_support_data()
    by_slug: dict[str, list[Use]] = {}
    for use in collect_uses(html):
        by_slug.setdefault(use.slug, []).append(use)
    findings = []
    for slug, uses in by_slug.items():
        feature = data.features[slug]
        missing: list[str] = []
        partial: list[str] = []
        reasons: list[str] = []
        for client in data.clients:
            verdict = feature.support.get(client, "u")
            if verdict not in ("n", "a"):
                continue
            seen = [use for use in uses if client not in use.unseen_by]
            quiet = [_allowed(use, client) for use in seen]
            if all(quiet):
                reasons += [reason for reason in quiet if reason]
                continue
            (missing if verdict == "n" else partial).append(client)
        if missing or partial:
            shown = tuple(use for use in uses if any(not _allowed(use, c) for c in data.clients))
            allowed = tuple(dict.fromkeys(reasons))
            findings.append(Finding(feature, tuple(missing), tuple(partial), shown, allowed))
    return findings


def check_client_support(html: str) -> list[CheckItem]:
    """The client-support checks of an email: warnings break the layout, infos are cosmetic."""
    data = load_support_data()
    names = data.clients
    findings = find_client_gaps(html)
    items: list[CheckItem] = []
    for finding in findings:
        if not finding.missing:
            continue
        feature = finding.feature
        where = _examples([use.where for use in finding.uses])
        text = (
            f"{feature.title} ({feature.category.upper()}) is not supported in "
            f"{_names(finding.missing, names)}"
        )
        if finding.partial:
            text += f", partly in {_names(finding.partial, names)}"
        level: Level = "warning" if finding.breaks_layout else "info"
        items.append((CODE, level, f"{text}; used in {where}; see {feature.url}"))
    items.sort(key=lambda item: item[1] != "warning")
    if items:
        return items
    partly = sorted((f for f in findings if f.partial), key=lambda f: -len(f.partial))
    partial = [f.feature.title for f in partly]
    note = f", {len(partial)} of them in part ({_examples(partial, '; ')})" if partial else ""
    clean = f"every feature the email uses works in the {len(names)} major clients{note}"
    return [(CODE, "ok", f"{clean}; caniemail data of {data.updated[:10]}")]


def _names(clients: tuple[str, ...], names: dict[str, str]) -> str:
    return ", ".join(names.get(client, client) for client in clients)


def _examples(items: list[str], separator: str = ", ") -> str:
    unique = list(dict.fromkeys(items))
    shown = separator.join(unique[:_EXAMPLES])
    more = len(unique) - _EXAMPLES
    return shown + (f" and {more} more" if more > 0 else "")
