"""SDG targets: the 169 targets in the UN's wording, read as the file spells them, shown in full."""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from importlib.resources import files
from pathlib import Path

import pytest
from lxml import html as lxml_html

from composer.build import build_issue
from composer.issue import sdg
from composer.issue.load import issue_problems, load_issue, load_newsletter
from composer.issue.model import Issue
from composer.project import load_project
from tests.conftest import REPO, run_compose

SEEDS_DIR = Path("/work/shared/seeds")  # the PDF text of the two real newsletters, when present
SEED_FILES = {"vol-36": "000_9a8e5f74e3f6b7d0.txt", "2022-05": "004_10532f5aa01f4dca.txt"}
# The distinct SDG sentences of the seeds, as printed (vol-36 has none). Kept here so the wording
# test runs without the seeds; test_the_quoted_sentences_are_the_seeds_own checks them.
SEED_SDG_SENTENCES = [
    "This activity contributes to SDG 16, particularly SDG 16.a on strengthening relevant national institutions for building capacity at all levels, in particular in developing countries, to prevent violence and combat terrorism and crime.",
    "This activity contributes to SDG 16, particularly SDG 16.a on strengthening relevant national institutions, including through international cooperation, for building capacity at all levels, in particular in developing countries, to prevent violence and combat terrorism and crime.",
    "This activity contributes to SDG 16, particularly SDG Target 16.a on strengthening relevant national institutions, including through international cooperation, for building capacity at all levels, in particular in developing countries, to prevent violence and combat terrorism and crime.",
    "This activity contributes to SDG 16, particularly Target 16.2 to end abuse, exploitation, trafficking and all forms of violence against and torture of children.",
    "This activity contributes to SDG 16, particularly Target 16.4 on significantly reducing illicit financial and arms flows, strengthen the recovery and return of stolen assets and combat all forms of organized crime.",
    "This activity contributes to SDG 16, particularly Target 16.4 to significantly reduce illicit financial and arms flows, strengthen the recovery and return of stolen assets and combat all forms of organized crime.",
    "This activity contributes to SDG 16, particularly Target 16.4 to significantly reduce illicit financial and arms flows, strengthen the recovery and return of stolen assets, and combat all forms of organized crime.",
    "This activity contributes to SDG 16, particularly Target 16.5 on substantially reducing corruption and bribery.",
    "This activity contributes to SDG 16, particularly Targets 16.5 on substantially reducing corruption and bribery and 16.4 significantly reducing illicit financial and arms flows, strengthen the recovery and return of stolen assets and combat all forms of organized crime.",
    "This activity contributes to SDG 3, particularly Target 3.5 on preventing and treating substance abuse.",
]
TARGETS_PER_GOAL = {1: 7, 2: 8, 3: 13, 4: 10, 5: 9, 6: 8, 7: 5, 8: 12, 9: 8, 10: 10}
TARGETS_PER_GOAL |= {11: 10, 12: 11, 13: 5, 14: 10, 15: 12, 16: 12, 17: 19}
WORDING_16_4 = (
    "By 2030, significantly reduce illicit financial and arms flows, strengthen the recovery and "
    "return of stolen assets and combat all forms of organized crime"
)
_TARGET = r"\d{1,2}\.(?:\d{1,2}|[a-z])"
# "16.4 on significantly reducing ...", "16.2 to end ...", "16.4 significantly reducing ..." up to
# the next quoted target ("... and 16.4 ...") or the sentence's end.
_QUOTE = re.compile(rf"({_TARGET})\s+(?:on |to )?(.+?)(?= and {_TARGET}\b|\.$)")
_FUNCTION_WORDS = frozenset(["a", "an", "and", "at", "for", "in", "of", "on", "the", "to"])


def write_issue(project: Path, article_yaml: str) -> Path:
    """An issue with one article whose extra keys are `article_yaml` (indented as under it)."""
    path = project / "issues" / "x.yaml"
    head = textwrap.dedent(
        """\
        volume: 1
        date: 2024-03-01
        subject: A subject
        sections:
          - title: Section
            articles:
              - title: Title
                dateline: here
                body: Some text.
        """
    )
    path.write_text(head + textwrap.indent(textwrap.dedent(article_yaml), " " * 8), "utf-8")
    return path


def sdg_of(project: Path, article_yaml: str) -> list[str]:
    newsletter = load_newsletter(project / "newsletter.yaml")
    issue: Issue = load_issue(write_issue(project, article_yaml), newsletter)
    return issue.sections[0].articles[0].sdg


def problems_of(project: Path, article_yaml: str) -> list[str]:
    path = write_issue(project, article_yaml)
    newsletter = load_newsletter(project / "newsletter.yaml")
    return [str(p).replace(str(path), "x.yaml") for p in issue_problems(path, newsletter)]


# --- the table ---------------------------------------------------------------------------------


def test_the_table_has_the_169_targets_of_the_17_goals() -> None:
    raw = json.loads(files("composer.issue").joinpath("sdg_targets.json").read_text("utf-8"))
    targets = [key for key in raw if "." in key]
    assert len(targets) == 169
    assert Counter(int(key.split(".")[0]) for key in targets) == TARGETS_PER_GOAL
    assert [key for key in raw if "." not in key] == [str(n) for n in range(1, 18)]
    for goal, count in TARGETS_PER_GOAL.items():
        keys = sdg.targets_of(goal)
        numbered = [k for k in keys if k.split(".")[1].isdigit()]
        lettered = [k.split(".")[1] for k in keys if not k.split(".")[1].isdigit()]
        # Numbered targets run 1..n without a gap, then the lettered means of implementation a, b, ...
        assert numbered == [f"{goal}.{n}" for n in range(1, len(numbered) + 1)]
        assert lettered == list("abcd"[: len(lettered)])
        assert len(keys) == count
    for key, text in raw.items():
        assert text == text.strip() and text, key
        assert not text.endswith("."), key  # the templates add the full stop
        assert "  " not in text and "\n" not in text, key


def test_lookups() -> None:
    assert sdg.target_text("16.4") == WORDING_16_4
    assert sdg.target_text("16.10") == (
        "Ensure public access to information and protect fundamental freedoms, in accordance "
        "with national legislation and international agreements"
    )
    assert sdg.target_text("16.1") != sdg.target_text("16.10")
    assert sdg.target_text("17.99") is None
    assert sdg.target_text("16") is None  # a goal, not a target
    assert sdg.is_target("16.a") and sdg.is_target("17.19") and sdg.is_target("3.d")
    assert not sdg.is_target("17.20") and not sdg.is_target("16.c") and not sdg.is_target("16")
    assert sdg.goal_title(16) is not None and sdg.goal_title(16).startswith(
        "Promote peaceful and inclusive societies for sustainable development"
    )
    assert sdg.goal_title(1) == "End poverty in all its forms everywhere"
    assert sdg.goal_title(0) is None and sdg.goal_title(18) is None


def quoted_targets(sentence: str) -> list[tuple[str, str]]:
    """(target, the seed's words for it) for each target an SDG sentence quotes."""
    return _QUOTE.findall(sentence)


def stems(text: str) -> list[str]:
    """The content words of `text`, each cut to its first five letters.

    Five letters make the seeds' paraphrases meet the official verbs and nouns: reducing/reduce,
    strengthening/strengthen, preventing/prevention, treating/treatment. Function words (the, and,
    of, ...) are left out, as the seeds add some ("on substantially reducing").
    """
    words = re.findall(r"[a-z0-9]+", text.lower())
    return [word[:5] for word in words if word not in _FUNCTION_WORDS]


def is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    rest = iter(haystack)
    return all(any(item == candidate for candidate in rest) for item in needle)


@pytest.fixture(scope="module")
def seed_sentences() -> list[str]:
    """The seeds' SDG sentences: read from the seeds when they are here, else the copy above."""
    if not SEEDS_DIR.is_dir():
        return SEED_SDG_SENTENCES
    found = set()
    for name in SEED_FILES.values():
        for line in (SEEDS_DIR / name).read_text("utf-8").splitlines():
            if re.search(rf"\b(?:target|SDG)s? {_TARGET}\b", line, re.IGNORECASE):
                found.add(line.strip())
    return sorted(found)


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="the seeds are not on this machine")
def test_the_quoted_sentences_are_the_seeds_own(seed_sentences: list[str]) -> None:
    assert seed_sentences == sorted(SEED_SDG_SENTENCES)


def test_the_table_says_what_the_seeds_quote(seed_sentences: list[str]) -> None:
    """Each target a seed quotes ("target 16.4 on significantly reducing ...") has that wording.

    What is compared: the seed's words for the target, as five-letter stems without function
    words, must appear in the table's wording in the same order (the seeds leave words out, such
    as "including through international cooperation", and turn verbs into -ing forms). Where the
    seed copies the wording ("Target 16.4 to significantly reduce ..."), the copy must stand in the
    table's wording letter for letter, after lower-casing and dropping commas.
    """
    quotes = [quote for sentence in seed_sentences for quote in quoted_targets(sentence)]
    assert {target for target, _ in quotes} == {"16.2", "16.4", "16.5", "16.a", "3.5"}
    assert len(quotes) == 11  # one sentence quotes two targets
    for target, words in quotes:
        official = sdg.target_text(target)
        assert official is not None, target
        assert is_subsequence(stems(words), stems(official)), (target, words, official)
        if words.startswith(("end ", "significantly reduce ")):  # copied, not paraphrased
            plain = words.lower().replace(",", "")
            assert plain in official.lower().replace(",", ""), (target, words)


def test_the_comparison_would_catch_a_wrong_wording() -> None:
    """The stem comparison is not vacuous: 16.4's seed words do not fit 16.5 or 16.10."""
    words = dict(quoted_targets(SEED_SDG_SENTENCES[4]))["16.4"]
    assert is_subsequence(stems(words), stems(WORDING_16_4))
    for other in ("16.5", "16.10", "16.1"):
        assert not is_subsequence(stems(words), stems(sdg.target_text(other) or ""))


# --- reading: a target is the text the file spells ----------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("sdg: 16.4\n", ["16.4"], id="bare-float"),
        pytest.param("sdg: [16.4]\n", ["16.4"], id="float-in-list"),
        pytest.param("sdg: [16.10]\n", ["16.10"], id="16.10-stays-16.10"),
        pytest.param("sdg: 16.10\n", ["16.10"], id="bare-16.10"),
        pytest.param("sdg: 16.a\n", ["16.a"], id="bare-lettered"),
        pytest.param('sdg: "16.4"\n', ["16.4"], id="quoted-single"),
        pytest.param("sdg: [16.5, 16.4, 16.a]\n", ["16.5", "16.4", "16.a"], id="mixed-order-kept"),
        pytest.param("sdg:\n  - 16.10\n  - '3.5'\n", ["16.10", "3.5"], id="block-list"),
        pytest.param("sdg: 16\n", ["16"], id="goal-alone"),
    ],
)
def test_a_target_reads_as_written(small_project: Path, written: str, expected: list[str]) -> None:
    assert sdg_of(small_project, written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param(
            'sdg: ["17.99"]\n',
            "x.yaml:10:15: '17.99' is not an SDG target (goal 17 has targets 17.1 to 17.19)",
            id="17.99",
        ),
        pytest.param(
            "sdg: 17.99\n",
            "x.yaml:10:14: '17.99' is not an SDG target (goal 17 has targets 17.1 to 17.19)",
            id="17.99-bare",
        ),
        pytest.param(
            "sdg: [16.4, 16.11]\n",
            "x.yaml:10:21: '16.11' is not an SDG target "
            "(goal 16 has targets 16.1 to 16.10, 16.a and 16.b)",
            id="second-item",
        ),
        pytest.param(
            "sdg: [16.40]\n",
            "x.yaml:10:15: '16.40' is not an SDG target "
            "(goal 16 has targets 16.1 to 16.10, 16.a and 16.b)",
            id="16.40-is-not-16.4",
        ),
        pytest.param(
            "sdg: [18.1]\n",
            "x.yaml:10:15: '18.1' is not an SDG target (there are 17 goals, 1 to 17)",
            id="goal-18",
        ),
        pytest.param(
            "sdg: [16.A]\n", "x.yaml:10:15: '16.A' is not an SDG target; write it '16.a'", id="case"
        ),
        pytest.param(
            "sdg: [16.4.1]\n",
            "x.yaml:10:15: '16.4.1' is an SDG indicator, not a target; write its target '16.4'",
            id="indicator",
        ),
        pytest.param(
            "sdg: [peace]\n",
            "x.yaml:10:15: 'peace' is not an SDG target like 16.4 or 16.a",
            id="words",
        ),
        pytest.param(
            "sdg: [true]\n",
            'x.yaml:10:15: sections[0].articles[0].sdg[0]: expected an SDG target such as "16.4", '
            "or a list of them",
            id="not-text",
        ),
        pytest.param(
            "sdg: {goal: 16}\n",
            'x.yaml:10:14: sections[0].articles[0].sdg: expected an SDG target such as "16.4", '
            "or a list of them",
            id="mapping",
        ),
    ],
)
def test_a_target_that_does_not_exist_is_an_error_at_its_place(
    small_project: Path, written: str, expected: str
) -> None:
    assert problems_of(small_project, written) == [expected]


def test_validate_says_where_instead_of_an_internal_error(small_project: Path) -> None:
    """The first week's crash: `sdg: 16.4` ended in "TypeError: 'float' object is not iterable"."""
    write_issue(small_project, "sdg: 16.4\n")
    assert run_compose("validate", "issues/x.yaml", cwd=small_project).code == 0
    write_issue(small_project, "sdg: 17.99\n")
    result = run_compose("validate", "issues/x.yaml", cwd=small_project)
    assert result.code != 0
    assert "internal error" not in result.stdout + result.stderr
    assert "issues/x.yaml:10:14: '17.99' is not an SDG target" in result.stdout + result.stderr


# --- rendering -----------------------------------------------------------------------------------


def test_each_target_is_shown_with_its_wording_in_html_and_text(small_project: Path) -> None:
    write_issue(small_project, "sdg: [16.10, 16.4]\n")
    project = load_project(small_project)
    built = build_issue(project, small_project / "issues" / "x.yaml", mode="full")
    line_16_4 = f"Contributes to SDG 16.4: {WORDING_16_4}."
    line_16_10 = f"Contributes to SDG 16.10: {sdg.target_text('16.10')}."
    for page in (built.email_html, built.web_html):
        metas = [p.text_content() for p in lxml_html.fromstring(page).find_class("meta")]
        assert line_16_10 in metas and line_16_4 in metas
        assert metas.index(line_16_10) + 1 == metas.index(line_16_4)  # the file's order, one each
        assert "Contributes to SDG 16.1:" not in page
    text = " ".join(built.email_txt.split())
    assert line_16_10 in text and line_16_4 in text
    assert "\n\nContributes to SDG 16.4: By 2030, significantly reduce illicit" in built.email_txt


def test_a_goal_alone_shows_the_goal_title(small_project: Path) -> None:
    write_issue(small_project, "sdg: 16\n")
    built = build_issue(load_project(small_project), small_project / "issues" / "x.yaml", "full")
    assert f"Contributes to SDG 16: {sdg.goal_title(16)}." in built.web_html


def test_sdg_targets_numbers_shows_only_the_numbers(small_project: Path) -> None:
    masthead = small_project / "newsletter.yaml"
    masthead.write_text(masthead.read_text("utf-8") + "sdg_targets: numbers\n", "utf-8")
    write_issue(small_project, "sdg: [16.10, 16.4]\n")
    built = build_issue(load_project(small_project), small_project / "issues" / "x.yaml", "full")
    assert "Contributes to SDG targets 16.10, 16.4</p>" in built.web_html
    assert "Contributes to SDG targets 16.10, 16.4\n" in built.email_txt
    assert "significantly reduce" not in built.web_html


def test_sdg_targets_accepts_only_builtin_or_numbers(small_project: Path) -> None:
    masthead = small_project / "newsletter.yaml"
    masthead.write_text(masthead.read_text("utf-8") + "sdg_targets: official\n", "utf-8")
    result = run_compose("validate", "issues/small.yaml", cwd=small_project)
    assert result.code != 0
    assert "sdg_targets" in result.stdout + result.stderr


def test_a_digest_keeps_the_wording_for_the_web_version(small_project: Path) -> None:
    """Teasers carry no article footer, so the wording costs the digest nothing."""
    write_issue(small_project, "sdg: 16.4\n")
    built = build_issue(load_project(small_project), small_project / "issues" / "x.yaml", "digest")
    assert WORDING_16_4 not in built.email_html and WORDING_16_4 not in built.email_txt
    assert f"Contributes to SDG 16.4: {WORDING_16_4}." in built.web_html


# --- the seeds -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds() -> dict[str, object]:
    project = load_project(REPO)
    return {slug: build_issue(project, REPO / "issues" / f"{slug}.yaml") for slug in SEED_FILES}


@pytest.mark.parametrize("slug", list(SEED_FILES))
def test_the_web_version_of_each_seed_holds_the_official_wording(seeds: dict, slug: str) -> None:
    built = seeds[slug]
    web = " ".join(lxml_html.fromstring(built.web_html).text_content().split())
    listed = [k for s in built.issue.sections for a in s.articles for k in a.sdg]
    for key in listed:
        assert f"Contributes to SDG {key}: {sdg.target_text(key)}." in web, (slug, key)
    assert built.email_size <= built.budget
    if slug == "2022-05":
        assert len(listed) == 16 and built.mode == "full"  # the wording still fits in full


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="the seeds are not on this machine")
@pytest.mark.parametrize("slug", list(SEED_FILES))
def test_each_article_lists_the_targets_its_seed_sentence_names(seeds: dict, slug: str) -> None:
    """The article under a seed heading lists the targets of the SDG sentence under that heading."""
    lines = [
        line.strip() for line in (SEEDS_DIR / SEED_FILES[slug]).read_text("utf-8").splitlines()
    ]
    articles = [a for s in seeds[slug].issue.sections for a in s.articles]
    starts = {a.title: lines.index(a.title) for a in articles if a.title in lines}
    assert len(starts) == len(articles) or slug == "vol-36"
    bounds = sorted(starts.values()) + [len(lines)]
    for article in articles:
        if article.title not in starts:
            assert not article.sdg  # vol-36 quotes no target
            continue
        start = starts[article.title]
        end = bounds[bounds.index(start) + 1]
        said = [
            target
            for line in lines[start:end]
            if "contributes to SDG" in line
            for target, _ in quoted_targets(line)
        ]
        assert article.sdg == said, article.title
