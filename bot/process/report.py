"""`python -m bot report`: the figures of `storage.reports` as a table, JSON or CSV.

JSON and CSV carry the same metrics under stable names (seconds and USD as plain numbers) for a
spreadsheet or a dashboard; the table is for a person reading a terminal.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from bot.config import AppConfig
from bot.toolkit.business_time import parse_duration
from storage.reports import Report, Spread, build_report


def figures(report: Report) -> dict[str, Any]:
    """Every metric of the report under its stable name."""

    def spread(name: str, value: Spread) -> dict[str, Any]:
        return {f"{name}_count": value.count, f"{name}_median_seconds": value.median,
                f"{name}_p90_seconds": value.p90}

    return {
        "since": report.since.isoformat(timespec="seconds"),
        "until": report.until.isoformat(timespec="seconds"),
        "conversations": report.conversations,
        "needed_person": report.needed_person,
        "needed_person_share": report.needed_person_share,
        "asked": report.asked,
        "transferred": report.transferred,
        "taken_over": report.taken_over,
        **spread("first_human_answer", report.first_human_answer),
        "resolved": report.resolved,
        **spread("resolution", report.resolution),
        "model_calls": report.model_calls,
        "prompt_tokens": report.prompt_tokens,
        "completion_tokens": report.completion_tokens,
        "tokens_per_case": report.tokens_per_case,
        "cost_usd": round(report.cost_usd, 6),
        "cost_per_case_usd": (None if report.cost_per_case is None
                              else round(report.cost_per_case, 6)),
        "unpriced_model_calls": report.unpriced_calls,
        "ratings_asked": report.ratings_asked,
        "ratings_given": len(report.ratings),
        "ratings_good": report.ratings_of(3),
        "ratings_ok": report.ratings_of(2),
        "ratings_bad": report.ratings_of(1),
        "ratings_average": (None if report.ratings_average is None
                            else round(report.ratings_average, 3)),
        "feedback_up": report.feedback_up,
        "feedback_down": report.feedback_down,
        **{f"feedback_week_of_{week.week_of.isoformat()}_{side}": count
           for week in report.feedback_weeks
           for side, count in (("up", week.up), ("down", week.down))},
        **knowledge_figures(report),
    }


def knowledge_figures(report: Report) -> dict[str, Any]:
    """Answered without a person (in all, and per week by its Monday), and the knowledge
    entries cited most (`top_entry_<rank>_id`, `..._uses`)."""
    out: dict[str, Any] = {
        "without_person": report.without_person,
        "without_person_share": (None if report.needed_person_share is None
                                 else round(1 - report.needed_person_share, 4)),
        "answered_from_knowledge": report.from_knowledge,
    }
    for week in report.weeks:
        out[f"week_{week.starts.isoformat()}_conversations"] = week.conversations
        out[f"week_{week.starts.isoformat()}_without_person_share"] = (
            None if week.without_person_share is None else round(week.without_person_share, 4))
    for rank, entry in enumerate(report.top_entries, start=1):
        out[f"top_entry_{rank}_id"] = entry.entry_id
        out[f"top_entry_{rank}_uses"] = entry.uses
    return out


def as_json(report: Report) -> str:
    return json.dumps(figures(report), indent=2)


def as_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "value"])
    for name, value in figures(report).items():
        writer.writerow([name, "" if value is None else value])
    return out.getvalue()


def duration(seconds: float | None) -> str:
    """`42s`, `12m 5s`, `3h 20m`, `2d 4h`; `-` when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def as_table(report: Report) -> str:
    def share(count: int) -> str:
        return f"{count} ({count / report.conversations:.0%})" if report.conversations else "0"

    first, resolution = report.first_human_answer, report.resolution
    per_case_cost = "-" if report.cost_per_case is None else f"${report.cost_per_case:.4f}"
    per_case_tokens = "-" if report.tokens_per_case is None else f"{report.tokens_per_case:.0f}"
    rows = [
        ("Period", f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"),
        ("Conversations", str(report.conversations)),
        ("Needed a person", share(report.needed_person)),
        ("  asked staff (askHuman)", str(report.asked)),
        ("  transferred to the team", str(report.transferred)),
        ("  taken over by staff", str(report.taken_over)),
        ("First human answer", f"median {duration(first.median)}, p90 {duration(first.p90)} "
                               f"({first.count} cases)"),
        ("Resolved", str(report.resolved)),
        ("Time to resolution", f"median {duration(resolution.median)}, "
                               f"p90 {duration(resolution.p90)} ({resolution.count} cases)"),
        ("Model calls", str(report.model_calls)),
        ("Tokens (prompt + completion)",
         f"{report.prompt_tokens} + {report.completion_tokens}, {per_case_tokens} per case"),
        ("Model cost", f"${report.cost_usd:.4f}, {per_case_cost} per case"),
    ]
    if report.unpriced_calls:
        rows.append(("  calls without a cost", f"{report.unpriced_calls} (stored before costs "
                                               "were recorded)"))
    average = ("-" if report.ratings_average is None
               else f"{report.ratings_average:.2f} of 3")
    rows.append(("Ratings (good / OK / bad)",
                 f"{report.ratings_of(3)} / {report.ratings_of(2)} / {report.ratings_of(1)}, "
                 f"average {average} ({len(report.ratings)} of {report.ratings_asked} asked)"))
    rows.append(("Answer feedback (👍 / 👎)",
                 f"{report.feedback_up} / {report.feedback_down}"))
    for week in report.feedback_weeks:
        rows.append((f"  week of {week.week_of:%Y-%m-%d}", f"{week.up} / {week.down}"))
    rows.append(("Answered without a person", share(report.without_person)))
    for week in report.weeks:
        rows.append((f"  week of {week.starts:%Y-%m-%d}",
                     f"{week.without_person} of {week.conversations} "
                     f"({week.without_person_share or 0:.0%})"))
    rows.append(("Answered from knowledge", share(report.from_knowledge)))
    for entry in report.top_entries:
        rows.append((f"  entry #{entry.entry_id}",
                     f"{entry.uses}× {' '.join(entry.question.split())[:60]}"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


FORMATS = {"table": as_table, "json": as_json, "csv": as_csv}


async def run_report(config: AppConfig, *, since: str, format: str) -> int:
    """Print the report of the conversations opened in the last `since`; 2 on a bad --since."""
    from storage.db import create_engine, create_session_factory
    from storage.models import utcnow

    try:
        period = parse_duration(since)
    except ValueError as error:
        print(f"error: --since: {error}", file=sys.stderr)
        return 2
    from sqlalchemy.engine import make_url

    url = make_url(config.database.url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not Path(url.database).is_file():
        print(f"error: the database {shown} does not exist (check database.url)",
              file=sys.stderr)
        return 1
    engine = create_engine(config.database.url)
    try:
        async with create_session_factory(engine)() as session:
            report = await build_report(session, since=utcnow() - period)
    except Exception as error:  # noqa: BLE001 - any database failure ends the command
        print(f"error: cannot read the database {shown}: {type(error).__name__}: "
              f"{str(error).splitlines()[0][:200]}\n  check database.url; `python -m bot doctor` "
              "says what is wrong", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(FORMATS[format](report).rstrip("\n"), flush=True)
    return 0
