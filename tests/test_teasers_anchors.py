"""Digest teasers end at a sentence end; web anchors are whole words, unique and stable."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from composer.build import build_issue
from composer.project import load_project
from composer.render import markdown
from composer.render.view import LONG_SENTENCE_CHARS, slugify
from tests.conftest import REPO

SEEDS = ["vol-36", "2022-05"]
SENTENCE_END = re.compile(r"[.!?][”\"’)]?$")


@pytest.fixture(scope="module")
def seeds() -> dict[str, object]:
    project = load_project(REPO)
    return {s: build_issue(project, REPO / "issues" / f"{s}.yaml", "digest") for s in SEEDS}


@pytest.mark.parametrize("seed", SEEDS)
def test_teasers_end_at_a_sentence_end_unless_the_sentence_is_very_long(
    seeds: dict, seed: str
) -> None:
    cut = 0
    for section in seeds[seed].view.sections:
        for view in section.articles:
            teaser = view.teaser_md
            if view.article.summary:
                continue
            if SENTENCE_END.search(teaser):
                continue
            # Only a first sentence longer than LONG_SENTENCE_CHARS may be cut, at a word end.
            first = markdown.paragraphs(view.article.body)[0]
            assert teaser.endswith(" …"), teaser
            kept = teaser.removesuffix(" …")
            assert first.startswith(kept) and first[len(kept)] in " ,;:", teaser
            assert len(first) > LONG_SENTENCE_CHARS
            assert kept.split()[-1].lower() not in {"the", "of", "and", "a", "to", "in"}
            cut += 1
    assert cut <= 2  # two Vol. 36 articles open with sentences of 650 and 712 characters


@pytest.mark.parametrize("seed", SEEDS)
def test_anchors_are_whole_words_unique_and_every_link_lands(seeds: dict, seed: str) -> None:
    built = seeds[seed]
    anchors = [s.anchor for s in built.view.sections] + [
        a.anchor for s in built.view.sections for a in s.articles
    ]
    assert len(anchors) == len(set(anchors))
    titles = [s.section.title for s in built.view.sections] + [
        a.article.title for s in built.view.sections for a in s.articles
    ]
    for anchor, title in zip(anchors, titles, strict=True):
        words = slugify(title, limit=10_000).split("-")
        base = re.sub(r"-\d+$", "", anchor) if anchor not in "-".join(words) else anchor
        assert "-".join(words).startswith(base)
        assert base == "-".join(words[: base.count("-") + 1]), (anchor, title)
    ids = set(re.findall(r'id="([^"]+)"', built.web_html))
    for section in built.view.sections:
        for article in section.articles:
            assert article.url.endswith(f"#{article.anchor}") and article.anchor in ids


def test_adding_items_later_renames_no_earlier_anchor(small_project: Path) -> None:
    issue_file = small_project / "issues" / "small.yaml"
    project = load_project(small_project)

    def anchors() -> list[str]:
        built = build_issue(project, issue_file)
        return [s.anchor for s in built.view.sections] + [
            a.anchor for s in built.view.sections for a in s.articles
        ]

    before = anchors()
    data = yaml.safe_load(issue_file.read_text(encoding="utf-8"))
    first_article = data["sections"][0]["articles"][0]
    data["sections"][-1]["articles"].append(
        copy.deepcopy(first_article)
    )  # the same title again, later
    data["sections"].append(
        {"title": data["sections"][0]["title"], "articles": [copy.deepcopy(first_article)]}
    )
    issue_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    after = anchors()
    assert set(before) <= set(after)
    assert len(after) == len(set(after)) == len(before) + 3
