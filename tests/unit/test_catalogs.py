"""The message catalogs (DESIGN §8.5, issue 25): every message the code asks for has a
Vietnamese translation with the same placeholders, and the compiled catalog is current."""

from __future__ import annotations

import ast
import io

import pytest
from approval_gate import i18n
from approval_gate.i18n import ntr, tr, trp
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from tools import catalogs


def test_every_message_of_the_code_has_a_vietnamese_translation_with_its_placeholders():
    assert catalogs.check() == []


def test_the_code_asks_for_messages_at_all():
    """The extraction keywords match i18n's functions (else check() passes on nothing)."""
    ids = {message.id for message in catalogs.extract() if message.id}
    assert "%(minutes)dm" in ids
    assert "{date_short_pretty} at {time}" in ids


def test_the_compiled_vietnamese_catalog_is_the_po_file():
    """`make catalogs` compiled the .po as it is now (a stale .mo would show English)."""
    (path,) = [p for p in catalogs.po_files() if p.parts[-3] == "vi"]
    for message in catalogs.read(path):
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            got = (
                i18n.catalog("vi").npgettext(message.context, *message.id, 1)
                if message.context
                else i18n.catalog("vi").ngettext(*message.id, 1)
            )
            assert got == message.string[0], message.id
        elif message.context:
            assert i18n.catalog("vi").pgettext(message.context, message.id) == message.string
        else:
            assert i18n.catalog("vi").gettext(message.id) == message.string, message.id


def _catalog(po: str) -> Catalog:
    header = 'msgid ""\nmsgstr ""\n"Language: vi\\n"\n"Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
    return read_po(io.BytesIO((header + po).encode()), domain="approval_gate")


def _template(*messages: str) -> Catalog:
    template = Catalog(domain="approval_gate")
    for message in messages:
        template.add(message)
    return template


def test_a_message_without_translation_is_named():
    found = list(catalogs.problems(_catalog(""), _template("Approve")))
    assert found == ["vi: 'Approve' has no translation"]


def test_a_translation_that_loses_or_renames_a_placeholder_is_named():
    po = 'msgid "by %(user)s in %(stage)s"\nmsgstr "bởi %(user)s trong %(stag)s"\n'
    (found,) = catalogs.problems(_catalog(po), _template("by %(user)s in %(stage)s"))
    assert "placeholders" in found and "stag" in found


def test_a_translation_that_drops_a_slack_date_token_is_named():
    po = 'msgid "{date_short_pretty} at {time}"\nmsgstr "lúc {time}"\n'
    (found,) = catalogs.problems(_catalog(po), _template("{date_short_pretty} at {time}"))
    assert "{date_short_pretty}" in found


def test_a_fuzzy_translation_is_named():
    po = '#, fuzzy\nmsgid "Approve"\nmsgstr "Phê duyệt"\n'
    assert list(catalogs.problems(_catalog(po), _template("Approve"))) == [
        "vi: 'Approve' is marked fuzzy (check it, then drop the flag)"
    ]


def test_english_is_the_code_s_own_words_and_vietnamese_comes_from_the_catalog():
    assert tr("en", "%(minutes)dm", minutes=5) == "5m"
    assert tr("vi", "%(minutes)dm", minutes=5) == "5 phút"
    assert ntr("en", "%(count)d commit", "%(count)d commits", 2) == "2 commits"
    assert trp("en", "button", "Approve") == "Approve"


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        i18n.catalog("fr")


def test_a_missing_compiled_catalog_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.catalog.cache_clear()
    try:
        with pytest.raises(i18n.CatalogMissing, match="make catalogs"):
            i18n.catalog("vi")
    finally:
        i18n.catalog.cache_clear()


def _catalog_calls() -> list[tuple[str, int, str, list[ast.expr]]]:
    """Every tr/trp/ntr call in the package's source, as the AST sees it (f-strings too)."""
    found = []
    for path in sorted(catalogs.PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in catalogs.KEYWORDS and path.name != "i18n.py":
                    found.append((path.name, node.lineno, name, node.args))
    return found


def test_every_catalog_call_names_its_message_literally_where_babel_finds_it():
    """Babel reads literal messages only, and on Python 3.11 not inside an f-string: a call
    it cannot see would reach Slack untranslated while the catalog check stays green."""
    extracted = {
        (message.context, message.id if isinstance(message.id, str) else message.id[0])
        for message in catalogs.extract()
        if message.id
    }
    calls = _catalog_calls()
    problems = []
    for filename, line, name, args in calls:
        positions = {"tr": (None, 1), "trp": (1, 2), "ntr": (None, 1)}[name]
        context_at, message_at = positions
        literal = [
            arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
            for arg in args
        ]
        message = literal[message_at] if len(literal) > message_at else None
        context = literal[context_at] if context_at is not None else None
        if message is None or (context_at is not None and context is None):
            problems.append(f"{filename}:{line}: {name}() without a literal message")
        elif (context, message) not in extracted:
            problems.append(f"{filename}:{line}: {message!r} is not extracted (in an f-string?)")
    assert problems == []
    assert len(calls) > 100
