"""The message catalogs (approval_gate.i18n), kept with Babel.

Usage::

    python -m tools.catalogs update    # extract the messages, merge them into each .po
    python -m tools.catalogs check     # every message translated, placeholders alike

``update`` is what a developer runs after adding or changing a text: Babel extracts every
``tr``/``trp``/``ntr`` call under functions/approval_gate (the template, .pot, is written
beside the catalogs and not committed), then updates each ``<language>/LC_MESSAGES/
approval_gate.po``: new messages come in untranslated, vanished ones are dropped. Translate
the new entries in the .po (its header's glossary link names the chosen words), then
``make catalogs`` compiles them. ``check`` (and tests/unit/test_catalogs.py) fails while a
message lacks a translation, a translation is fuzzy, or its placeholders differ from the
English.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.checkers import PYTHON_FORMAT
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "functions" / "approval_gate"
LOCALE = PACKAGE / "locale"
DOMAIN = "approval_gate"
TEMPLATE = LOCALE / f"{DOMAIN}.pot"
#: approval_gate.i18n's functions: tr(language, message), trp(language, context, message),
#: ntr(language, singular, plural, count).
KEYWORDS = {"tr": (2,), "trp": ((2, "c"), 3), "ntr": (2, 3)}
#: A comment starting so, on the line before a call, reaches the translator.
COMMENT_TAG = "Translators:"


def extract() -> Catalog:
    """Every message the package's code asks for, with where and the translators' notes."""
    template = Catalog(project="Approval Gate", domain=DOMAIN, fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        PACKAGE,
        keywords=KEYWORDS,
        comment_tags=(COMMENT_TAG,),
        strip_comment_tags=True,
    ):
        template.add(
            message,
            locations=[(f"functions/approval_gate/{filename}", lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def po_files() -> list[Path]:
    return sorted(LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, domain=DOMAIN)


def update() -> list[Path]:
    """Write the template, then merge it into each language's catalog."""
    template = extract()
    with TEMPLATE.open("wb") as handle:
        write_po(handle, template, width=100)
    for path in po_files():
        catalog = read(path)
        created = catalog.creation_date  # the header changes only when messages do
        catalog.update(template, no_fuzzy_matching=True)
        catalog.creation_date = created
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, ignore_obsolete=True)
    return po_files()


#: Slack's date tokens ({date_short_pretty}, {time}): a translation keeps them as they are.
SLACK_TOKEN = re.compile(r"\{[a-z_]+\}")


def placeholders(text: str) -> list[tuple[str, str]]:
    """The named %-placeholders of a message and its Slack date tokens, sorted:
    (name, conversion) and (token, "slack")."""
    found = [(name or "", conversion) for name, _, conversion in PYTHON_FORMAT.findall(text)]
    found += [(token, "slack") for token in SLACK_TOKEN.findall(text)]
    return sorted(found)


def english_forms(message: Message) -> list[str]:
    """A message's English: its msgid, or its singular and plural."""
    return list(message.id) if isinstance(message.id, tuple | list) else [message.id]


def translations(message: Message) -> list[str]:
    """A catalog entry's translation: its msgstr, or each plural form's."""
    if isinstance(message.string, tuple | list):
        return list(message.string)
    return [message.string or ""]


def problems(language_catalog: Catalog, template: Catalog) -> Iterator[str]:
    """What keeps a catalog from covering the code's messages, one line each."""
    language = str(language_catalog.locale)
    for message in template:
        if not message.id:
            continue
        found = language_catalog.get(message.id, message.context)
        where = f"{language}: {message.id!r}" + (
            f" (context {message.context!r})" if message.context else ""
        )
        if found is None or not any(translations(found)):
            yield f"{where} has no translation"
            continue
        if found.fuzzy:
            yield f"{where} is marked fuzzy (check it, then drop the flag)"
        expected = placeholders(english_forms(message)[0])
        for string in translations(found):
            if not string:
                yield f"{where}: a plural form is empty"
            elif placeholders(string) != expected:
                yield f"{where}: placeholders {placeholders(string)} differ from {expected}"


def check() -> list[str]:
    template = extract()
    found: list[str] = []
    for path in po_files():
        found += problems(read(path), template)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.catalogs", description=__doc__)
    parser.add_argument("command", choices=("update", "check"))
    args = parser.parse_args(argv)
    if args.command == "update":
        for path in update():
            print(f"updated {path.relative_to(ROOT)}")
        return 0
    found = check()
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(f"ok: {len(po_files())} catalog(s) cover every message")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
