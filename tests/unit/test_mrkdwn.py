"""Markdown to Slack mrkdwn conversion and splitting of long answers."""

from __future__ import annotations

import random
import re

import pytest

from bot.toolkit.mrkdwn import neutralise_mentions, split_message, to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*italic*", "_italic_"),
        ("_italic_", "_italic_"),
        ("***both***", "*_both_*"),
        ("~~strike~~", "~strike~"),
        ("*a **b** c*", "_a *b* c_"),
        ("2 * 3 * 4 and snake_case_name", "2 * 3 * 4 and snake_case_name"),
    ],
)
def test_emphasis(markdown: str, expected: str) -> None:
    assert to_mrkdwn(markdown) == expected


def test_links_and_images() -> None:
    assert to_mrkdwn("see [the docs](https://example.com/docs)") == (
        "see <https://example.com/docs|the docs>"
    )
    assert to_mrkdwn("![logo](https://example.com/logo.png)") == (
        "<https://example.com/logo.png|logo>"
    )
    assert to_mrkdwn("[x](https://en.wikipedia.org/wiki/A_(b))") == (
        "<https://en.wikipedia.org/wiki/A_(b)|x>"
    )
    assert to_mrkdwn('[**Docs**](https://e.com "title")') == "<https://e.com|*Docs*>"
    assert to_mrkdwn("[](https://e.com)") == "<https://e.com>"


def test_link_urls_are_not_escaped_but_labels_are() -> None:
    assert to_mrkdwn("[Q&A](https://e.com/?a=1&b=2)") == "<https://e.com/?a=1&b=2|Q&amp;A>"


def test_headings() -> None:
    assert to_mrkdwn("# Title") == "*Title*"
    assert to_mrkdwn("### Setup **now** ###") == "*Setup now*"
    assert to_mrkdwn("Title\n=====\nbody") == "*Title*\nbody"
    assert to_mrkdwn("#hashtag") == "#hashtag"


def test_bullets_keep_nesting_and_bold() -> None:
    markdown = "- **Step one:** install\n  - nested *detail*\n* star item\n+ plus item"
    assert to_mrkdwn(markdown) == (
        "• *Step one:* install\n  • nested _detail_\n• star item\n• plus item"
    )


def test_task_list() -> None:
    assert to_mrkdwn("- [ ] todo\n- [x] done") == "• ☐ todo\n• ☑ done"


def test_numbered_lists_unchanged() -> None:
    assert to_mrkdwn("1. first\n2. **second**\n10) tenth") == "1. first\n2. *second*\n10) tenth"


def test_blockquotes_keep_their_marker() -> None:
    assert to_mrkdwn("> quoted **text** & more") == "> quoted *text* &amp; more"
    assert to_mrkdwn(">> nested") == "> nested"


def test_horizontal_rules() -> None:
    assert to_mrkdwn("above\n\n---\n\nbelow\n\n* * *") == "above\n\n———\n\nbelow\n\n———"


def test_escapes_plain_text() -> None:
    assert to_mrkdwn("a < b && c > d <div>") == "a &lt; b &amp;&amp; c &gt; d &lt;div&gt;"


def test_entities_are_not_escaped_twice_outside_code() -> None:
    assert to_mrkdwn("help &amp; &lt;fast&gt; & more") == "help &amp; &lt;fast&gt; &amp; more"
    assert to_mrkdwn("`&amp;`") == "`&amp;amp;`"  # code shows what was written


def test_keeps_slack_tokens() -> None:
    text = "hi <@U123> in <#C123|support>, <!here> see <https://x.io|y> or <https://x.io>"
    assert to_mrkdwn(text) == text


def test_email_autolink() -> None:
    assert to_mrkdwn("<help@example.com>") == "<mailto:help@example.com|help@example.com>"


def test_inline_code_untouched() -> None:
    assert to_mrkdwn("run `**not bold** [x](y)` now") == "run `**not bold** [x](y)` now"
    # Slack decodes entities everywhere, code included, so escaping keeps `<` showing as `<`.
    assert to_mrkdwn("`a<b`") == "`a&lt;b`"


def test_fenced_code_untouched_and_language_dropped() -> None:
    markdown = "Try:\n```python\ndef f(x):\n    return **x  # _not_ italic\n```\nDone."
    assert to_mrkdwn(markdown) == (
        "Try:\n```\ndef f(x):\n    return **x  # _not_ italic\n```\nDone."
    )


def test_indented_fence_in_list_item() -> None:
    markdown = "1. Run:\n   ```bash\n   pip install x\n     --upgrade\n   ```"
    assert to_mrkdwn(markdown) == "1. Run:\n```\npip install x\n  --upgrade\n```"


def test_unclosed_fence_is_closed() -> None:
    assert to_mrkdwn("```\ncode") == "```\ncode\n```"


def test_table_becomes_aligned_code_block() -> None:
    markdown = "| Plan | Price |\n|:-----|------:|\n| **Pro** | $10 |\n| `Team` | $100 |\n\nafter"
    assert to_mrkdwn(markdown) == (
        "```\n"
        "Plan | Price\n"
        "-----+------\n"
        "Pro  |   $10\n"
        "Team |  $100\n"
        "```\n"
        "\n"
        "after"
    )


def test_strips_surrounding_blank_lines() -> None:
    assert to_mrkdwn("\n\nhello\n\n") == "hello"


# --- neutralise_mentions -------------------------------------------------------------------------

WJ = "\u2060"  # the word joiner that keeps `@channel` from being a mention


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel> <!here> <!everyone>", f"@{WJ}channel @{WJ}here @{WJ}everyone"),
        ("<!here|here> and <!channel|@channel>", f"@{WJ}here and @{WJ}channel"),
        ("<!subteam^S123> <!subteam^S9|@ops-team>", f"@{WJ}S123 @{WJ}ops-team"),
        ("ask <@U0STAFF> or <@U0SKY|sky>", f"ask @{WJ}U0STAFF or @{WJ}sky"),
        ("typed @channel, @here and @sam", f"typed @{WJ}channel, @{WJ}here and @{WJ}sam"),
    ],
)
def test_mentions_become_text_that_pings_nobody(text: str, expected: str) -> None:
    assert neutralise_mentions(text) == expected


def test_links_channels_dates_and_emails_stay() -> None:
    text = ("see <https://e.com/?u=@sam&x=1|the docs> in <#C123|support> on "
            "<!date^1700000000^{date}|Nov 14> or mail <mailto:a@b.com|a@b.com>, a@b.com")
    assert neutralise_mentions(text) == text


def test_raw_control_characters_are_escaped_once() -> None:
    assert neutralise_mentions("a & b < c > d <div>") == "a &amp; b &lt; c &gt; d &lt;div&gt;"
    # What Slack already escaped (customer text arrives escaped) is not escaped again.
    assert neutralise_mentions("Q&amp;A &lt;tag&gt;") == "Q&amp;A &lt;tag&gt;"
    assert neutralise_mentions("<@U1|Bo & Co>") == f"@{WJ}Bo &amp; Co"


def test_quote_markers_stay_but_other_angle_brackets_do_not() -> None:
    assert neutralise_mentions("> quoted\n>> nested\n2 > 1") == "> quoted\n>> nested\n2 &gt; 1"


def test_neutralising_twice_changes_nothing_more() -> None:
    samples = ["<!channel> hi <@U1|sam> & <b> @here", "x <https://e.com|y> &amp; > q",
               "> *Customer:* <!subteam^S1> help <3", "<a&b> <@> <!>"]
    for text in samples:
        once = neutralise_mentions(text)
        assert neutralise_mentions(once) == once
        assert not re.search(r"<[@!]|(?<![\w@])@(?:channel|here|everyone)\b", once)


def test_model_answer_with_mentions_converted_then_neutralised() -> None:
    markdown = "**Hi** <!channel>, `<!here>` stays code, [docs](https://e.com)"
    answer = neutralise_mentions(to_mrkdwn(markdown))
    assert answer == f"*Hi* @{WJ}channel, `&lt;!here&gt;` stays code, <https://e.com|docs>"


# --- split_message -------------------------------------------------------------------------------


def test_split_empty_and_short() -> None:
    assert split_message("") == []
    assert split_message(" \n\n ") == []
    assert split_message("\n\nhello\n\n") == ["hello"]


def test_split_rejects_tiny_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_message("hello", 5)


def test_split_prefers_paragraphs_then_lines_then_sentences_then_spaces() -> None:
    first, second = "a" * 30 + ".", "b" * 30 + "."
    assert split_message(f"{first}\n\n{second}", 50) == [first, second]
    assert split_message(f"{first}\n{second}", 50) == [first, second]
    assert split_message(f"{first} {second}", 50) == [first, second]
    assert split_message("word " * 20, 50) == ["word " * 9 + "word", "word " * 9 + "word"]


def test_split_prefers_sentence_end_over_space() -> None:
    text = "One sentence here. And another one that goes past it."
    assert split_message(text, 40) == ["One sentence here.", "And another one that goes past it."]


def test_split_ten_thousand_characters_keeps_words_in_order() -> None:
    rng = random.Random(7)
    vocabulary = ["support", "ticket", "answer.", "Slack", "escalate?", "customer", "done!"]
    paragraphs = [
        " ".join(rng.choice(vocabulary) for _ in range(rng.randint(5, 120)))
        for _ in range(200)
    ]
    text = "\n\n".join(paragraphs)[:10_000]
    assert len(text) == 10_000
    chunks = split_message(text, 3900)
    assert len(chunks) >= 3
    assert all(0 < len(chunk) <= 3900 for chunk in chunks)
    assert all(chunk == chunk.strip() for chunk in chunks)
    assert " ".join(chunks).split() == text.split()


def test_split_never_cuts_a_link() -> None:
    link = "<https://example.com/a/very/long/path|a link with several words>"
    text = " ".join(["word"] * 10 + [link] * 5 + ["word"] * 10)
    chunks = split_message(text, 120)
    assert all(len(chunk) <= 120 for chunk in chunks)
    for chunk in chunks:
        assert re.sub(re.escape(link), "", chunk).count("<") == 0
        assert chunk.count("<") == chunk.count(">")
    assert " ".join(chunks).split() == text.split()


def test_split_closes_and_reopens_code_blocks() -> None:
    code = "\n".join(f"line {number}" for number in range(40))
    text = f"Here is the script:\n```\n{code}\n```\nRun it."
    chunks = split_message(text, 100)
    assert len(chunks) > 2
    for chunk in chunks:
        assert len(chunk) <= 100
        assert chunk.count("```") % 2 == 0
    assert chunks[0].startswith("Here is the script:")
    assert all(chunk.startswith("```") for chunk in chunks[1:])
    inside = [line for chunk in chunks for line in chunk.splitlines() if line.startswith("line ")]
    assert inside == code.splitlines()
    assert chunks[-1].endswith("```\nRun it.")


def test_split_does_not_leave_an_empty_code_block() -> None:
    text = "intro " * 12 + "\n```\n" + "code line\n" * 10 + "```"
    chunks = split_message(text, 80)
    assert all("```\n```" not in chunk for chunk in chunks)


def test_split_invariants_on_random_text() -> None:
    rng = random.Random(3)
    pieces = ["alpha", "beta.", "gamma!", "<https://e.com/x|label text>", "&amp;", "*bold*",
              "\n", "\n\n", "\n```\nprint(1)\nprint(2)\n```\n", "x" * 45]
    for _ in range(300):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 200)))
        limit = rng.choice([20, 50, 120, 500])
        chunks = split_message(text, limit)
        assert all(0 < len(chunk) <= limit for chunk in chunks)
        assert all(chunk.count("```") % 2 == 0 for chunk in chunks)
        assert "".join("".join(chunks).replace("```", "").split()) == (
            "".join(text.replace("```", "").split())
        )


def test_split_converted_answer() -> None:
    markdown = "# Fix\n\n" + "\n".join(f"- **Step {n}:** do [this](https://e.com/{n})"
                                       for n in range(200))
    chunks = split_message(to_mrkdwn(markdown))
    assert len(chunks) >= 2
    assert all(len(chunk) <= 3900 for chunk in chunks)
    assert all(line.startswith("• *Step") for chunk in chunks[1:] for line in chunk.splitlines())
