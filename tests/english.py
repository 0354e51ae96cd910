"""The oracle of "no English in a Vietnamese run" (issue 25): which English texts of the
message catalog a text shown to people still contains.

Independent of the rendering code: it reads the catalog's English messages (Babel's
extraction of the source) and the Vietnamese translations, and knows nothing of how a
message is put together. A message's English is cut at its placeholders, Slack's date
tokens, markup characters and line breaks into fragments; a fragment counts as English
when no Vietnamese translation uses it too (words Vietnamese engineers keep, like
"CodePipeline" or "commit", are kept by the translations and so never count).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any

from tools import catalogs

_CUT = re.compile(r"%\([a-z_]+\)[a-z]|\{[a-z_]+\}|[*_~`>\n•·|:;()\[\]]|%%")
_LETTERS = re.compile(r"[A-Za-z]")
#: Links are addresses, not words: a bare one, and the target of Slack's <url|label>.
_LINK = re.compile(r"https?://[^\s|>]+")
#: Keys of Slack's payloads whose strings are ids, links or markup, never words people read.
NOT_WORDS = frozenset(
    {
        "action_id",
        "block_id",
        "callback_id",
        "channel",
        "emoji",
        "external_id",
        "initial_date_time",
        "private_metadata",
        "style",
        "thread_ts",
        "token",
        "ts",
        "type",
        "url",
        "user",
        "value",
        "view_id",
        "trigger_id",
        "response_url",
        "icon_emoji",
        "username",
        "mrkdwn",
    }
)


def _fragments(text: str) -> Iterator[str]:
    for piece in _CUT.split(text):
        piece = piece.strip(" ,.!?-\u2014\u2013/'\"")
        if _LETTERS.search(piece) and len(piece) >= 3:
            yield piece


@cache
def english_fragments() -> frozenset[str]:
    """The catalog's English fragments that no Vietnamese translation keeps."""
    template = catalogs.extract()
    (vi_path,) = [path for path in catalogs.po_files() if path.parts[-3] == "vi"]
    vietnamese = catalogs.read(vi_path)
    kept = " \n ".join(
        string for message in vietnamese if message.id for string in catalogs.translations(message)
    )
    found = set()
    for message in template:
        if not message.id:
            continue
        for english in catalogs.english_forms(message):
            for fragment in _fragments(english):
                if not re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", kept):
                    found.add(fragment)
    return frozenset(found)


def shown_texts(payload: Any, key: str = "") -> Iterator[str]:
    """Every string of a Slack payload (blocks, a view, a message's arguments) a person
    reads: ids, links, values and the like left out."""
    if isinstance(payload, Mapping):
        for name, value in payload.items():
            if name not in NOT_WORDS:
                yield from shown_texts(value, name)
    elif isinstance(payload, list | tuple):
        for item in payload:
            yield from shown_texts(item, key)
    elif isinstance(payload, str):
        yield payload


def english_in(texts: Iterable[str], data: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(fragment, text) for each English catalog fragment found in ``texts``; the strings
    of ``data`` (pipeline, stage and action names, people's comments) are taken out of each
    text first, since they are what the run was given, not the gate's words; so are links."""
    found = []
    data = sorted((d for d in data if d), key=len, reverse=True)
    for text in texts:
        cleaned = _LINK.sub(" ", text)
        for value in data:
            cleaned = cleaned.replace(value, " ")
        for fragment in english_fragments():
            if re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", cleaned):
                found.append((fragment, text))
    return found
