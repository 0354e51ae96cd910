"""The words people read, in their rule's language (DESIGN §8.5): gettext catalogs.

Every text a person reads in Slack, the fallback notification and the PutApprovalResult
summary is an English message (its msgid) looked up in the catalog of the rule's
``language``. The catalogs are standard gettext: ``locale/<language>/LC_MESSAGES/
approval_gate.po`` in the repository, compiled to ``.mo`` by ``make catalogs`` and by the
layer build (Babel extracts, updates and compiles; the runtime reads ``.mo`` files with the
standard library's gettext, so Babel never ships in the layer).

Call sites name their placeholders, so a translation may reorder them::

    tr(language, "Approved by %(user)s", user=mention)
    ntr(language, "%(count)d commit", "%(count)d commits", count)
    trp(language, "button", "Approve")

``tr``, ``ntr`` and ``trp`` are the extraction keywords (``make catalogs``). A message with
no values is returned as the catalog has it (a ``%`` in it is a plain character); with
values it is a ``%``-format string (a literal ``%`` is written ``%%``). Each catalog is read
once per process, when its language is first used: English, the source language, reads no
catalog and imports no gettext, so an English-only gate's cold start pays nothing for this
(docs/performance.md measures the first Vietnamese text's cost).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gettext

DOMAIN = "approval_gate"
DEFAULT_LANGUAGE = "en"
#: The languages a rule may choose; English is the catalogs' source language.
LANGUAGES: tuple[str, ...] = ("en", "vi")
LOCALE_DIR = Path(__file__).with_name("locale")


class CatalogMissing(RuntimeError):
    """A language's compiled catalog is not where the package expects it (not built)."""


@cache
def catalog(language: str) -> gettext.NullTranslations:
    """The translations of ``language``, read once (the compiled ``.mo``, opened directly:
    gettext's search by locale names would import ``locale`` for nothing)."""
    import gettext

    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as compiled:
            return gettext.GNUTranslations(compiled)
    except FileNotFoundError:
        raise CatalogMissing(
            f"the {language!r} message catalog is not built ({path}): run `make catalogs`"
        ) from None


def tr(language: str, message: str, /, **values: object) -> str:
    """``message`` in ``language``, its named placeholders filled from ``values``."""
    text = message if language == DEFAULT_LANGUAGE else catalog(language).gettext(message)
    return text % values if values else text


def trp(language: str, context: str, message: str, /, **values: object) -> str:
    """As :func:`tr`, for a message whose words depend on where it stands (``context``
    tells the translator, say ``button`` for Approve beside ``status`` for Approved)."""
    english = language == DEFAULT_LANGUAGE
    text = message if english else catalog(language).pgettext(context, message)
    return text % values if values else text


def ntr(language: str, singular: str, plural: str, count: int, /, **values: object) -> str:
    """The form of ``singular``/``plural`` the language uses for ``count``, filled with
    ``count`` and ``values``."""
    if language == DEFAULT_LANGUAGE:
        text = singular if count == 1 else plural
    else:
        text = catalog(language).ngettext(singular, plural, count)
    return text % {"count": count, **values}
