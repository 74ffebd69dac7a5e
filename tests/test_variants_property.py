"""Property: every reader of a random list gets exactly the sections their interests and the
issue's `tailor` call for, in their language, with every merge field filled or defaulted as
jinja2's SandboxedEnvironment would render the text for them."""

from __future__ import annotations

import csv
import email
import io
import shutil
import tempfile
from email.policy import default as default_policy
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import SandboxedEnvironment

from composer.delivery.plan import plan_send
from composer.project import load_project
from tests.test_variants import FIXTURE, part, toc

SECTIONS = [("Border control", "I"), ("Financial flows", "II"), ("Prevention", "III")]
UNPILLARED = "From the office"
SERBIAN_TITLES = {"Border control": "Kontrola granica"}
INTROS = {
    "en": 'Dear {{ name | default("colleague") }},',
    "sr-Latn": 'Dobar dan, {{ name | default("koleginice i kolege") }},',
}
LANGUAGE_CELLS = {"": "en", "en": "en", "sr": "sr-Latn", "sr-Latn": "sr-Latn",
                  "SR-latn": "sr-Latn", "sq": "en", "de": "en"}  # fmt: skip

words = st.text(alphabet=st.sampled_from("AaBbŠšĆćŽž<>&\"'{}%*_#|-."), min_size=1, max_size=8)
names = st.lists(words, max_size=3).map(" ".join)
readers = st.lists(
    st.tuples(
        names,
        st.sampled_from(sorted(LANGUAGE_CELLS)),
        st.sets(st.sampled_from(["I", "II", "III"])),
        st.sampled_from(["", "Serbia", "North Macedonia"]),
    ),
    min_size=1,
    max_size=8,
)


def expected_titles(tailor: str, interests: set[str], language: str) -> list[str]:
    pillared = [title for title, _ in SECTIONS]
    theirs = [title for title, pillar in SECTIONS if pillar in interests]
    if tailor == "off" or not theirs:
        titles = [*pillared, UNPILLARED]
    elif tailor == "lead":
        titles = theirs + [t for t in [*pillared, UNPILLARED] if t not in theirs]
    else:
        titles = [*theirs, UNPILLARED]
    if language == "sr-Latn":
        titles = [SERBIAN_TITLES.get(t, t) for t in titles]
    return titles


def sandboxed(template: str, cells: dict[str, str]) -> str:
    """What jinja2's sandbox renders: an empty cell is a missing value, so `default` applies."""
    context = {key: value for key, value in cells.items() if value}
    return SandboxedEnvironment().from_string(template).render(context)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(tailor=st.sampled_from(["off", "lead", "only"]), rows=readers)
def test_every_reader_gets_their_sections_language_and_fields(
    tailor: str, rows: list[tuple[str, str, set[str], str]]
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="variants-property-"))
    try:
        root = folder / "project"
        shutil.copytree(FIXTURE, root)
        issue = root / "issues" / "tailored.yaml"
        issue.write_text(
            issue.read_text(encoding="utf-8").replace("tailor: only", f"tailor: {tailor}"),
            encoding="utf-8",
        )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "name", "country", "organization", "language", "interests"])
        for n, (name, language, interests, country) in enumerate(rows):
            writer.writerow(
                [f"r{n}@example.org", name, country, "", language, ";".join(sorted(interests))]
            )
        (root / "subscribers" / "readers.csv").write_text(out.getvalue(), encoding="utf-8")

        plan = plan_send(load_project(root), issue, "readers")
        assert plan.audience is not None
        seen = 0
        chunks = plan.audience.chunks()
        for list_name, recipient in ((name, r) for name, chunk in chunks for r in chunk):
            name, language_cell, interests, country = rows[int(recipient.email[1:].split("@")[0])]
            envelope = plan.reader_envelope(recipient, list_name)
            data = plan.template.personalize(
                envelope.email, envelope.name, envelope.unsubscribe_url,
                token=envelope.token, fill=envelope.fill,
            )  # fmt: skip
            message = email.message_from_bytes(data, policy=default_policy)
            text = part(message, "plain")
            language = LANGUAGE_CELLS[language_cell]
            assert toc(text) == expected_titles(tailor, interests, language)
            cells = {"name": name, "country": country, "email": recipient.email}
            greeting = sandboxed(INTROS[language], cells)
            assert greeting in text.splitlines()
            assert "zqMERGE" not in data.decode("utf-8", "replace")
            if "I" in interests or tailor == "off" or not interests:
                default = "regiona" if language == "sr-Latn" else "the region"
                assert (country or default) in " ".join(text.split())
            seen += 1
        assert seen == len(rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
