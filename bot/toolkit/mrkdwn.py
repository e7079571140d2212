"""Slack formatting for model answers: CommonMark-ish Markdown to mrkdwn, and message splitting.

`to_mrkdwn` rewrites what LLMs write (`**bold**`, `[text](url)`, `# Title`, `- item`, tables, fenced
code) into Slack's mrkdwn dialect and escapes `&`, `<`, `>` as Slack requires, keeping Slack tokens
such as `<@U123>` and `<https://x|y>` intact. `split_message` cuts a long mrkdwn text into chunks
that each fit one Slack message, at the most natural break, without breaking code blocks or links.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable

# Private-use characters: placeholders for stashed inline tokens and for bold markers.
_STASH_OPEN, _STASH_CLOSE, _BOLD = "\ue000", "\ue001", "\ue002"
_STASH_REF = re.compile(f"{_STASH_OPEN}(\\d+){_STASH_CLOSE}")

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_HORIZONTAL_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(?P<title>.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_QUOTE = re.compile(r"^[ \t]{0,3}(?:>[ \t]?)+(?P<content>.*)$")
_BULLET = re.compile(r"^(?P<indent>[ \t]*)[-*+][ \t]+(?P<content>.*)$")
_NUMBERED = re.compile(r"^[ \t]*\d{1,9}[.)][ \t]")
_TASK = re.compile(r"^\[(?P<mark>[ xX])\][ \t]+")
_TABLE_DELIMITER = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_TABLE_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def _destination(name: str) -> str:
    """Pattern for a link destination `(url "title")`, capturing the URL as group `name`."""
    return (
        rf"\([ \t]*(?:<(?P<{name}_angled>[^<>\n]+)>|(?P<{name}>(?:[^()\s\\]|\\.|\([^()\s]*\))+))"
        r"(?:[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'))?[ \t]*\)"
    )


_LABEL = r"(?:[^\[\]\\\n]|\\.|\[[^\[\]\n]*\])*"
_INLINE_TOKEN = re.compile(
    r"(?P<escape>\\[!-/:-@\[-`{-~])"
    r"|(?P<code>(?P<ticks>`+)(?P<code_body>[^\n]+?)(?<!`)(?P=ticks)(?!`))"
    r"|(?P<slack><(?:[@#!][^<>\n]*|(?:https?://|mailto:|tel:|slack://)[^<>\s|]+(?:\|[^<>\n]*)?)>)"
    r"|<(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)>"
    r"|(?P<br><br[ \t]*/?>)"
    rf"|!\[(?P<alt>{_LABEL})\]{_destination('src')}"
    rf"|\[(?P<label>{_LABEL})\]{_destination('href')}",
    re.IGNORECASE,
)
# Span contents exclude their own delimiter so that a failed match stops at the next one
# (linear time instead of quadratic on adversarial input).
_BOLD_ITALIC = re.compile(r"(?<!\*)\*\*\*(?=[^\s*])([^*]+?)(?<=[^\s*])\*\*\*(?!\*)")
_BOLD_STARS = re.compile(r"\*\*(?=\S)((?:[^*]|\*(?!\*))+?)(?<=\S)\*\*")
_BOLD_UNDERSCORES = re.compile(r"(?<!\w)__(?=\S)((?:[^_]|_(?!_))+?)(?<=\S)__(?!\w)")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*]+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)((?:[^~]|~(?!~))+?)(?<=\S)~~")
_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)

_FENCE = "```"
_MIN_LIMIT = 20
# Never cut inside these: Slack tokens such as <url|text>, HTML entities, runs of backticks.
_UNSPLITTABLE = re.compile(r"<[^<>\n]*>|&#?\w{1,10};|`{3,}")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_LINE_BREAK = re.compile(r"\n")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]*_~]*(?=\s)")
_SPACE = re.compile(r"[ \t]")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def neutralise_mentions(mrkdwn: str) -> str:
    """Make words the bot did not write safe to post: no mention, broadcast or stray markup.

    `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>` and `<@U…>` become readable text
    that pings nobody (`@channel`, `@handle`, `@U123`, with a word joiner after the `@`), as do
    typed `@channel`/`@name` words that Slack could auto-link in blocks. Links, `<#C…>` channel
    links and `<!date^…>` stay. Raw `&`, `<`, `>` are escaped; Slack's own `&amp;`, `&lt;`,
    `&gt;` and a `>` quote marker at the start of a line are kept, so applying it twice changes
    nothing more than applying it once.
    """
    return _UNSAFE.sub(_neutralise_token, mrkdwn)


def to_mrkdwn(markdown: str) -> str:
    """Convert CommonMark-ish model output to Slack mrkdwn."""
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE_OPEN.match(line)
        if fence and not (fence["fence"][0] == "`" and "`" in fence["info"]):
            index = _convert_code_block(lines, index, fence, out)
        elif _is_table_start(lines, index):
            index = _convert_table(lines, index, out)
        elif (index + 1 < len(lines) and _SETEXT_UNDERLINE.match(lines[index + 1])
              and _is_paragraph_line(line)):
            out.append(_convert_heading(line.strip()))
            index += 2
        else:
            out.append(_convert_line(line))
            index += 1
    return _strip_blank_lines("\n".join(out))


def split_message(text: str, limit: int = 3900) -> list[str]:
    """Split mrkdwn into chunks of at most `limit` characters at the most natural breaks.

    Prefers paragraph breaks, then line breaks, then sentence ends, then spaces. A code block cut
    in two is closed at the end of one chunk and reopened at the start of the next; `<...>` tokens
    and entities are never cut unless a single one is longer than a third of the limit.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit must be at least {_MIN_LIMIT} characters, got {limit}")
    chunks: list[str] = []
    rest = _strip_blank_lines(text)
    while rest:
        if len(rest) <= limit:
            chunks.append(rest)
            break
        head, rest = _take_chunk(rest, limit)
        if head:
            chunks.append(head)
    return chunks


# --- to_mrkdwn: blocks ---------------------------------------------------------------------------


def _convert_code_block(lines: list[str], index: int, fence: re.Match[str], out: list[str]) -> int:
    """Emit a fenced block without its language tag; return the index after its closing fence."""
    marker, indent = fence["fence"], len(fence["indent"].expandtabs(4))
    closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
    out.append(_FENCE)
    index += 1
    while index < len(lines) and not closing.match(lines[index]):
        out.append(escape_mrkdwn(_dedent(lines[index], indent)))
        index += 1
    out.append(_FENCE)
    return index + 1


def _dedent(line: str, width: int) -> str:
    """Remove up to `width` leading spaces (the opening fence's indentation)."""
    stripped = line.lstrip(" ")
    return line[min(width, len(line) - len(stripped)):]


def _is_table_start(lines: list[str], index: int) -> bool:
    if index + 1 >= len(lines) or "|" not in lines[index] or "|" not in lines[index + 1]:
        return False
    if not _TABLE_DELIMITER.match(lines[index + 1]):
        return False
    return len(_split_table_row(lines[index])) == len(_split_table_row(lines[index + 1]))


def _split_table_row(line: str) -> list[str]:
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _TABLE_CELL_SEPARATOR.split(row)]


def _convert_table(lines: list[str], index: int, out: list[str]) -> int:
    """Render a pipe table as an aligned code block; return the index after the table."""
    header = [_plain_cell(cell) for cell in _split_table_row(lines[index])]
    alignments = [
        "center" if cell.startswith(":") and cell.endswith(":")
        else "right" if cell.endswith(":") else "left"
        for cell in _split_table_row(lines[index + 1])
    ]
    rows: list[list[str]] = []
    index += 2
    while index < len(lines) and "|" in lines[index] and lines[index].strip():
        rows.append([_plain_cell(cell) for cell in _split_table_row(lines[index])])
        index += 1
    columns = max(len(header), *(len(row) for row in rows)) if rows else len(header)
    alignments += ["left"] * (columns - len(alignments))
    table = [row + [""] * (columns - len(row)) for row in [header, *rows]]
    widths = [max(_display_width(row[column]) for row in table) for column in range(columns)]

    def render(row: list[str]) -> str:
        cells = map(_pad, row, widths, alignments)
        return escape_mrkdwn(" | ".join(cells).rstrip())

    out.append(_FENCE)
    out.append(render(table[0]))
    out.append("-+-".join("-" * width for width in widths))
    out.extend(render(row) for row in table[1:])
    out.append(_FENCE)
    return index


def _plain_cell(cell: str) -> str:
    """Table cell text without inline markup, for a code block where markup would show."""
    cell = _INLINE_TOKEN.sub(_plain_token, cell)
    for pattern in (_BOLD_ITALIC, _BOLD_STARS, _BOLD_UNDERSCORES, _STRIKE):
        cell = pattern.sub(r"\1", cell)
    return cell.strip()


def _plain_token(match: re.Match[str]) -> str:
    if match["escape"]:
        return match["escape"][1]
    if match["code"]:
        return match["code_body"].strip()
    if match["br"]:
        return " "
    if match["email"]:
        return match["email"]
    if match["slack"]:
        return match["slack"]
    text = match["alt"] if match["alt"] is not None else match["label"]
    url = match["src"] or match["src_angled"] or match["href"] or match["href_angled"]
    return f"{text} ({url})" if text and text != url else url


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, width: int, align: str) -> str:
    gap = width - _display_width(text)
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def _is_paragraph_line(line: str) -> bool:
    return bool(line.strip()) and not any(
        pattern.match(line)
        for pattern in (_HORIZONTAL_RULE, _HEADING, _QUOTE, _BULLET, _NUMBERED, _FENCE_OPEN,
                        _SETEXT_UNDERLINE)
    )


def _convert_heading(title: str) -> str:
    """`*Title*`; bold markers inside are dropped since Slack cannot nest bold."""
    converted = _convert_inline(re.sub(r"\*\*|__", "", title)).strip()
    return f"*{converted}*" if converted else ""


def _convert_line(line: str) -> str:
    if _HORIZONTAL_RULE.match(line):
        return "———"
    heading = _HEADING.match(line)
    if heading:
        return _convert_heading(heading["title"] or "")
    quote = _QUOTE.match(line)
    if quote:  # Nested quotes become one level: Slack has none, and `>>>` quotes the whole rest.
        content = _convert_line(quote["content"])
        return f"> {content}" if content else ">"
    bullet = _BULLET.match(line)
    if bullet:
        content = bullet["content"]
        task = _TASK.match(content)
        if task:
            content = ("☑ " if task["mark"] in "xX" else "☐ ") + content[task.end():]
        return f"{bullet['indent']}• {_convert_inline(content)}"
    return _convert_inline(line.rstrip())


# --- to_mrkdwn: inline ---------------------------------------------------------------------------


def _convert_inline(text: str) -> str:
    """Convert emphasis, links and code in one line, escaping everything else."""
    stash: list[str] = []

    def keep(token: str) -> str:
        stash.append(token)
        return f"{_STASH_OPEN}{len(stash) - 1}{_STASH_CLOSE}"

    text = _INLINE_TOKEN.sub(lambda match: keep(_convert_token(match)), text)
    # `&amp;`, `&lt;`, `&gt;` are entities in Markdown as in mrkdwn (the model often echoes
    # Slack's escaped text): kept, so that they are not escaped twice.
    text = _escape_bare(text).replace("<", "&lt;").replace(">", "&gt;")
    text = _BOLD_ITALIC.sub(rf"{_BOLD}_\1_{_BOLD}", text)
    text = _BOLD_STARS.sub(rf"{_BOLD}\1{_BOLD}", text)
    text = _BOLD_UNDERSCORES.sub(rf"{_BOLD}\1{_BOLD}", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace(_BOLD, "*")
    return _STASH_REF.sub(lambda match: stash[int(match[1])], text)


def _convert_token(match: re.Match[str]) -> str:
    if match["escape"]:
        return escape_mrkdwn(match["escape"][1])
    if match["code"]:
        body = match["code_body"]
        if body.startswith(" ") and body.endswith(" ") and body.strip():
            body = body[1:-1]
        return f"`{escape_mrkdwn(body)}`"
    if match["slack"]:
        return match["slack"]
    if match["email"]:
        return f"<mailto:{match['email']}|{match['email']}>"
    if match["br"]:
        return "\n"
    if match["alt"] is not None:
        return _link(match["src"] or match["src_angled"], match["alt"])
    return _link(match["href"] or match["href_angled"], match["label"])


def _link(url: str, label: str) -> str:
    """`<url|label>`, `<url>` when the label adds nothing, plain text for relative URLs."""
    url = re.sub(r"\\(.)", r"\1", url.strip())
    text = _convert_inline(label).strip()
    if not _URL_SCHEME.match(url):
        return f"{text} ({escape_mrkdwn(url)})" if text else escape_mrkdwn(url)
    for char, code in ((" ", "%20"), ("<", "%3C"), (">", "%3E"), ("|", "%7C")):
        url = url.replace(char, code)
    if not text or label.strip() == url:
        return f"<{url}>"
    return f"<{url}|{text}>"


# --- neutralise_mentions -------------------------------------------------------------------------

_WORD_JOINER = "\u2060"  # zero width, no break: `@\u2060channel` reads as @channel, pings nobody
_UNSAFE = re.compile(
    r"(?P<entity>&(?:amp|lt|gt);)"
    r"|<(?P<token>[^<>\n]*)>"
    r"|(?P<quote>^[ \t]*>+)"
    r"|(?P<char>[&<>])"
    r"|(?P<plain>(?<![\w@.+\-/=])@(?=\w))",
    re.MULTILINE,
)
_SAFE_TOKEN = re.compile(r"^(?:#|!date\^|(?:https?|ftp|slack)://|mailto:|tel:)", re.IGNORECASE)


def _neutralise_token(match: re.Match[str]) -> str:
    if match["entity"] or match["quote"]:
        return match[0]
    if match["char"]:
        return escape_mrkdwn(match["char"])
    if match["plain"]:
        return f"@{_WORD_JOINER}"
    token = match["token"]
    if _SAFE_TOKEN.match(token):
        return match[0]
    if token.startswith(("@", "!")):
        target, _, label = token.partition("|")
        name = label.lstrip("@").strip() or target[1:].removeprefix("subteam^")
        return f"@{_WORD_JOINER}{_escape_bare(name)}" if name else "@"
    return f"&lt;{_escape_bare(token)}&gt;"


def _escape_bare(text: str) -> str:
    """Escape `&` not already part of an entity (inside text that has no `<` or `>`)."""
    return re.sub(r"&(?!(?:amp|lt|gt);)", "&amp;", text)


# --- split_message -------------------------------------------------------------------------------


def _strip_blank_lines(text: str) -> str:
    """Drop leading blank lines and trailing whitespace; keep the first line's indentation."""
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


def _inside_code_block(text: str) -> bool:
    return text.count(_FENCE) % 2 == 1


def _take_chunk(text: str, limit: int) -> tuple[str, str]:
    """Cut one chunk of at most `limit` characters off `text`; return (chunk, rest)."""
    cut, inline = _find_cut(text, limit)
    if _inside_code_block(text[:cut]):
        window = limit - len("\n" + _FENCE)
        cut, inline = _find_cut(text, window)
        last_fence = text.rfind(_FENCE, 0, cut)
        if (_inside_code_block(text[:cut]) and last_fence >= window // 3
                and "\n" not in text[last_fence:cut].rstrip()):
            cut, inline = last_fence, False  # do not leave an empty code block behind
    head, rest = _strip_blank_lines(text[:cut]), text[cut:]
    if inline:
        rest = rest.lstrip(" \t")
    rest = _strip_blank_lines(rest)
    if _inside_code_block(head):
        head += "\n" + _FENCE
        if rest.lstrip(" \t").startswith(_FENCE):  # the cut fell just before the closing fence
            rest = rest.lstrip(" \t")[len(_FENCE):]
        else:
            rest = f"{_FENCE}\n{rest}"
    return head, _strip_blank_lines(rest)


def _find_cut(text: str, window: int) -> tuple[int, bool]:
    """Best cut position within `text[:window]`, and whether it falls inside a line."""
    lowest = max(1, window // 3)
    spans: list[tuple[int, int]] = []
    for match in _UNSPLITTABLE.finditer(text):
        if match.start() >= window:
            break
        spans.append(match.span())

    starts = [start for start, _ in spans]

    def allowed(position: int) -> bool:
        before = bisect.bisect_left(starts, position) - 1  # spans do not overlap
        return before < 0 or spans[before][1] <= position

    candidates: list[tuple[re.Pattern[str], Callable[[re.Match[str]], int], bool]] = [
        (_PARAGRAPH_BREAK, re.Match.start, False),
        (_LINE_BREAK, re.Match.start, False),
        (_SENTENCE_END, re.Match.end, True),
        (_SPACE, re.Match.start, True),
    ]
    for pattern, position_of, inline in candidates:
        positions = [position_of(match) for match in pattern.finditer(text, 0, window + 1)]
        usable = [position for position in positions
                  if lowest <= position <= window and allowed(position)]
        if usable:
            return max(usable), inline
    for start, end in spans:  # hard cut, before an unsplittable token if it is not too long
        if start < window < end and start >= lowest:
            return start, False
    return window, False
