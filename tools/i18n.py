"""Extract, update and compile the theme's gettext catalogues (composer/theme/locale/).

    python tools/i18n.py update              # extract messages.pot, merge it into every .po, compile
    python tools/i18n.py compile             # only compile each .po to its .mo
    python tools/i18n.py add de              # start a catalogue for a new language (BCP 47 tag)

After `update`, translate the new or fuzzy entries of each composer/theme/locale/*/LC_MESSAGES/
messages.po (any PO editor, or by hand), run `compile`, commit the .po and the .mo together;
tests/test_i18n.py fails while an entry is missing or fuzzy or a .mo is older than its .po.
Where the text is found: babel.cfg. See docs/languages.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.frontend import CommandLineInterface

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "composer" / "theme" / "locale"
TEMPLATE = LOCALE_DIR / "messages.pot"
KEYWORDS = ["-k", "N_"]  # beside Babel's defaults (_, gettext, ngettext …)


def pybabel(*args: str) -> None:
    """Run one pybabel command (Babel's own command line), from the repository root."""
    CommandLineInterface().run(["pybabel", "-q", *args])


def extract() -> None:
    """Every translatable text of the package into messages.pot."""
    pybabel(
        "extract", "-F", str(ROOT / "babel.cfg"), *KEYWORDS, "--no-wrap", "--sort-by-file",
        "--project", "composer", "--copyright-holder", "composer contributors",
        "-o", str(TEMPLATE), "composer",
    )  # fmt: skip


def update() -> None:
    """Merge messages.pot into each language's messages.po (new entries empty, changed fuzzy)."""
    pybabel("update", "-i", str(TEMPLATE), "-d", str(LOCALE_DIR), "--no-wrap")


def compile_all() -> None:
    """Compile each messages.po to messages.mo (what the package reads)."""
    pybabel("compile", "-d", str(LOCALE_DIR), "--statistics")


def add(tag: str) -> None:
    """A new catalogue for `tag` (e.g. `de`, `sr-Latn`), from messages.pot."""
    pybabel("init", "-i", str(TEMPLATE), "-d", str(LOCALE_DIR), "-l", tag.replace("-", "_"))


def main(argv: list[str]) -> None:
    import os

    os.chdir(ROOT)  # babel.cfg's patterns are relative to the repository root
    match argv:
        case ["update"]:
            extract()
            update()
            compile_all()
        case ["compile"]:
            compile_all()
        case ["add", tag]:
            extract()
            add(tag)
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
