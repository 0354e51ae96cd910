"""Text that leaves the gate: mrkdwn escaping, plain one-line summaries, cutting, durations."""

from __future__ import annotations

import pytest
from approval_gate.text import (
    MAX_SUMMARY,
    cut_at_word,
    escape_mrkdwn,
    human_duration,
    one_line,
    plain,
)
from hypothesis import given
from hypothesis import strategies as st

# --------------------------------------------------------------------------- plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel> deploy now", "channel deploy now"),
        ("<!here> please look", "here please look"),
        ("<!everyone>", "everyone"),
        ("ask <@U123> first", "ask U123 first"),
        ("see <https://evil.example/phish|click here> now", "see click here now"),
        ("<https://example.com/bare>", "https://example.com/bare"),
        ("<#C0DEPLOYS|deploys>", "deploys"),
        ("@channel wake up", "channel wake up"),
        ("@here and @everyone", "here and everyone"),
        ("tests\x00 fail\x07ed", "tests fail ed"),
        ("line one\nline two\r\n\tthree", "line one line two three"),
        ("right\u202eto left", "right to left"),
        ("  padded   text  ", "padded text"),
        ("a < b > c", "a b c"),
    ],
)
def test_plain_takes_the_power_out_of_slack_markup(text: str, expected: str) -> None:
    assert plain(text) == expected


@given(st.text())
def test_plain_output_is_one_printable_line_without_markup(text: str) -> None:
    result = plain(text)
    assert "<" not in result
    assert ">" not in result
    assert all(ch.isprintable() for ch in result)
    assert "  " not in result
    assert result == result.strip()


@pytest.mark.parametrize("text", ["@@channel", "@@here", "@@everyone", "@@<!channel>"])
def test_plain_leaves_no_broadcast_mention_however_it_is_spelled(text: str) -> None:
    result = plain(text)
    for mention in ("@channel", "@here", "@everyone"):
        assert mention not in result


# --------------------------------------------------------------------------- cut_at_word


def test_cut_at_word_keeps_text_within_the_limit_unchanged() -> None:
    assert cut_at_word("deploy web 1.42", 15) == "deploy web 1.42"
    assert cut_at_word("already ends with…", 18) == "already ends with…"


def test_cut_at_word_cuts_between_words_and_adds_an_ellipsis() -> None:
    text = "The quick brown fox jumps over the lazy dog"
    result = cut_at_word(text, 22)
    assert result == "The quick brown fox…"
    assert len(result) <= 22


def test_cut_at_word_cuts_a_single_long_word_hard() -> None:
    assert cut_at_word("a" * 40, 10) == "a" * 9 + "…"


def test_cut_at_word_does_not_cut_back_to_a_stub() -> None:
    # A space early in the text would leave almost nothing: cut the long word instead.
    result = cut_at_word("ok " + "x" * 50, 20)
    assert result == "ok " + "x" * 16 + "…"


alphabet = st.characters(codec="utf-8") | st.sampled_from(
    [" ", "\u00a0", "é", "中", "😀", "\U0001d11e", "👩", "\u200d", "💻"]
)
texts = st.text(alphabet=alphabet)
#: (limit, a text longer than limit): the texts that must be cut.
too_long = st.integers(min_value=4, max_value=120).flatmap(
    lambda limit: st.tuples(st.just(limit), st.text(alphabet=alphabet, min_size=limit + 1))
)


@given(texts, st.integers(min_value=1, max_value=120))
def test_cut_at_word_never_exceeds_the_limit_nor_splits_a_character(text: str, limit: int) -> None:
    result = cut_at_word(text, limit)

    assert len(result) <= limit
    result.encode("utf-8")  # no half of a character survives
    if len(text) <= limit:
        assert result == text
        return
    assert result.endswith("…")
    stem = result[:-1]
    assert text.startswith(stem)


@given(too_long)
def test_cut_at_word_cuts_at_a_word_when_one_ends_late_enough(case: tuple[int, str]) -> None:
    limit, text = case
    stem = cut_at_word(text, limit)[:-1]
    at_boundary = text[len(stem)].isspace()
    no_space_to_cut_at = " " not in text[limit // 2 + 1 : limit - 1]
    assert at_boundary or no_space_to_cut_at


ASTRAL = ["😀", "\U0001d11e", "🚀"]


@given(st.text(alphabet=st.sampled_from([*ASTRAL, " "]), min_size=1), st.integers(1, 30))
def test_cut_at_word_keeps_astral_characters_whole(text: str, limit: int) -> None:
    result = cut_at_word(text, limit)
    assert set(result) <= {*ASTRAL, " ", "…"}


def test_one_line_makes_a_summary_plain_and_short() -> None:
    text = "<!channel> " + "word " * 200
    result = one_line(text)
    assert len(result) <= MAX_SUMMARY
    assert result.startswith("channel word word")
    assert result.endswith("word…")


# --------------------------------------------------------------------------- escape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U0BOB>", "&lt;@U0BOB&gt;"),
        ("R&D <b>", "R&amp;D &lt;b&gt;"),
        ("&lt;", "&amp;lt;"),
        ("*bold* _it_ `code`", "*bold* _it_ `code`"),
    ],
)
def test_escape_mrkdwn_escapes_the_three_control_characters(text: str, expected: str) -> None:
    assert escape_mrkdwn(text) == expected


@given(st.text())
def test_escaped_text_has_no_markup_and_reads_back_as_written(text: str) -> None:
    escaped = escape_mrkdwn(text)
    assert "<" not in escaped
    assert ">" not in escaped
    # Slack shows &lt; &gt; &amp; as the characters: the reader sees exactly the text.
    assert escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-5, "0s"),
        (45, "45s"),
        (59.4, "59s"),
        (59.6, "1m"),
        (60, "1m"),
        (90, "1m 30s"),
        (12 * 60, "12m"),
        (3600, "1h"),
        (3 * 3600 + 20 * 60, "3h 20m"),
        (24 * 3600, "24h"),
        (47 * 3600 + 59 * 60, "47h 59m"),
        (48 * 3600, "2d"),
        (4 * 86400 + 2 * 3600, "4d 2h"),
        (7 * 86400, "7d"),
    ],
)
def test_human_duration_reads_like_a_person_would_say_it(seconds: float, text: str) -> None:
    assert human_duration(seconds, "en") == text
