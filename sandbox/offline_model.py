"""The offline model: a deterministic stand-in for an LLM, for demos and tests without network.

`respond(request_json)` reads an OpenAI chat completion request and returns a model step
(`sandbox.model_steps`). Its behaviour, in order:

1. If tool results came in after the latest user message (the model is being resumed):
   - a result of `askHuman` that is a staff member's answer -> it answers the customer with
     it: "Our team says: <result>" (a JSON result's `answer` / `text` / `reply` field is used
     when present);
   - a result of `askHuman` that is the bot's instruction (JSON with `outcome` and
     `instruction`: staff let the bot answer, cancelled the question, or nobody answered in
     time) -> it follows it: it answers the question on its own (steps 3 and 5 below), or,
     when nobody answered in time, tells the customer the team will follow up;
   - a result of `transferToHuman` -> "I've asked a member of our team to take over ...";
   - any other tool result -> a short answer quoting it.
2. If the customer asks for a person ("human", "agent", "person", "representative",
   "operator", "talk/speak to someone") and a `transferToHuman` tool is offered ->
   it calls `transferToHuman` with `{"reason": "..."}`.
3. If the question matches the small FAQ below (opening hours, pricing, password reset,
   refunds, by keywords) -> it answers from the FAQ.
4. If an `askHuman` tool is offered -> it calls `askHuman` with
   `{"question": "A customer asks: \"...\" What should I tell them?"}`, and, when the tool
   takes a `suggested_answer` and the question matches one of the GUESSES below (shipping,
   discounts, invoices, cancelling), that guess as the answer it would send, for staff to
   use as it is or edit.
5. Otherwise -> a polite generic answer that lists what it can help with.

Before all of these, two requests of the knowledge loop (issue 16):
- a request to distill a knowledge entry (its system prompt asks for "entries for a support
  team's knowledge base") -> JSON `{"question": <the customer's first line>, "answer": <what
  staff answered>}`;
- a customer question whose system prompt lists saved knowledge entries (`[kb:N] Q: ... A: ...`,
  closest first) -> the first entry's answer, cited with its tag `[kb:N]`.

Slack mentions (`<@U123>`) are removed from the customer's text first.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.model_steps import Reply, ToolCalls

FAQ: dict[str, tuple[tuple[str, ...], str]] = {
    "opening hours": (
        ("opening hours", "hours", "open", "opening", "closing", "close"),
        "We're open Monday to Friday, 9:00 to 17:00 UK time, except public holidays.",
    ),
    "pricing": (
        ("price", "prices", "pricing", "cost", "costs", "plan", "plans", "how much"),
        "Our Starter plan is $10 per user per month and Pro is $25 per user per month; "
        "both come with a 14-day free trial.",
    ),
    "password reset": (
        ("password", "reset", "locked out", "log in", "login", "sign in"),
        "To reset your password, open the sign-in page, click \"Forgot password?\" and follow "
        "the link we email you. The link is valid for 24 hours.",
    ),
    "refunds": (
        ("refund", "refunds", "money back", "reimburse"),
        "We refund any payment made in the last 30 days: reply with your invoice number and "
        "we'll process it within 5 business days.",
    ),
}

# Plausible answers the demo model is not sure of: it asks staff, suggesting these.
GUESSES: dict[str, tuple[tuple[str, ...], str]] = {
    "shipping": (
        ("ship", "shipping", "shipped", "deliver", "delivery", "send it"),
        "We ship worldwide with tracked delivery in 5 to 7 business days; you get the "
        "tracking link by email as soon as your order leaves our warehouse.",
    ),
    "discount": (
        ("discount", "coupon", "promo", "cheaper", "deal"),
        "We offer 20% off annual plans, and 50% off for non-profits and schools.",
    ),
    "invoice": (
        ("invoice", "receipt", "billing", "charged", "vat"),
        "Every invoice is in Settings → Billing, ready to download; we can also email a copy "
        "to your billing contact.",
    ),
    "cancel": (
        ("cancel", "close my account", "unsubscribe", "stop my plan"),
        "You can cancel any time in Settings → Billing; your plan stays active until the end "
        "of the period you paid for.",
    ),
}

WANTS_PERSON = re.compile(
    r"\b(human|agent|person|representative|operator)\b"
    r"|\b(talk|speak|chat)\s+(to|with)\s+(someone|somebody|a real)\b", re.IGNORECASE)
MENTION = re.compile(r"<@[A-Z0-9]+>")
GENERIC = ("Thanks for your message! I can help with opening hours, pricing, password resets "
           "and refunds. For anything else, a member of our team will get back to you.")
TRANSFERRED = ("I've asked a member of our team to take over this conversation; "
               "they'll reply here shortly.")


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def offered_tools(request: dict[str, Any]) -> set[str]:
    names = set()
    for tool in request.get("tools") or []:
        if isinstance(tool, dict):
            names.add(str((tool.get("function") or {}).get("name") or tool.get("name") or ""))
    return names


def result_text(content: Any) -> str:
    """A tool result as text; a JSON object's answer-like field when it has one."""
    text = text_of(content).strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        for key in ("answer", "text", "reply", "result", "content"):
            if isinstance(data.get(key), str):
                return data[key]
    return text if not isinstance(data, str) else data


NO_ANSWER_YET = ("Our team hasn't answered this yet; they'll follow up in this thread as soon "
                 "as they can.")


def instruction_of(content: Any) -> str | None:
    """The `outcome` of a tool result that is an instruction from the bot, not an answer."""
    try:
        data = json.loads(text_of(content))
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("instruction"), str):
        return str(data.get("outcome") or "instruction")
    return None


def recent_tool_results(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(tool name, result text) of the tool results after the latest user message."""
    names: dict[str, str] = {}
    results: list[tuple[str, str]] = []
    for message in messages:
        role = message.get("role")
        if role == "user":
            names.clear()
            results.clear()
        elif role == "assistant":
            for call in message.get("tool_calls") or []:
                names[str(call.get("id"))] = str((call.get("function") or {}).get("name"))
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id")), str(message.get("name") or ""))
            outcome = instruction_of(message.get("content"))
            if outcome is not None:
                name = f"{name}:{outcome}"
            results.append((name, result_text(message.get("content"))))
    return results


def faq_answer(question: str) -> str | None:
    lowered = question.lower()
    best, best_hits = None, 0
    for keywords, answer in FAQ.values():
        hits = sum(1 for k in keywords if re.search(rf"\b{re.escape(k)}\b", lowered))
        if hits > best_hits:
            best, best_hits = answer, hits
    return best


def takes_suggestion(request: dict[str, Any]) -> bool:
    """True when the offered `askHuman` tool has a `suggested_answer` parameter."""
    for tool in request.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function") or tool
        if function.get("name") == "askHuman":
            properties = (function.get("parameters") or {}).get("properties") or {}
            return "suggested_answer" in properties
    return False


def guess(question: str) -> str | None:
    """A plausible answer the model would send if its guess is right (GUESSES), or None."""
    lowered = question.lower()
    for keywords, answer in GUESSES.values():
        if any(re.search(rf"\b{re.escape(k)}", lowered) for k in keywords):
            return answer
    return None
DISTILL_MARKER = "entries for a support team's knowledge base"
KNOWLEDGE_ENTRY = re.compile(r"^\[kb:(\d+)\] Q: .*?\nA: (.*?)(?=\n\n\[kb:|\Z)",
                             re.MULTILINE | re.DOTALL)


def system_text(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(text_of(m.get("content")) for m in messages if m.get("role") == "system")


def distilled_entry(messages: list[dict[str, Any]]) -> Reply:
    """A knowledge entry from the distill request: the customer's words, the staff's answer."""
    asked = text_of(messages[-1].get("content")) if messages else ""
    customer, _, staff = asked.partition("\n\nStaff answered:\n")
    question = customer.removeprefix("Customer asked:\n").strip().splitlines() or [""]
    answer = " ".join(line.removeprefix("- ").strip() for line in staff.splitlines())
    return Reply(json.dumps({"question": MENTION.sub("", question[0]).strip(),
                             "answer": answer.strip()}))


def respond(request: dict[str, Any]) -> Reply | ToolCalls:
    """The offline model's answer to one chat completion request (see the module doc)."""
    messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
    system = system_text(messages)
    if DISTILL_MARKER in system:
        return distilled_entry(messages)
    tools = offered_tools(request)
    results = recent_tool_results(messages)
    question = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            question = MENTION.sub("", text_of(message.get("content"))).strip()
            break
    short = " ".join(question.split())[:300]
    if results:
        human = [text for name, text in results if name == "askHuman"]
        if human:
            return Reply("Our team says: " + " ".join(human))
        if any(name == "transferToHuman" for name, _ in results):
            return Reply(TRANSFERRED)
        outcomes = {name.partition(":")[2] for name, _ in results
                    if name.startswith("askHuman:")}
        if "no_answer_in_time" in outcomes:
            return Reply(NO_ANSWER_YET)
        if outcomes:  # answer on our own: what we know, or the generic answer
            return Reply(faq_answer(question) or GENERIC)
        return Reply("Here is what I found: " + " ".join(text for _, text in results))
    entry = KNOWLEDGE_ENTRY.search(system)
    if entry:
        return Reply(f"{entry.group(2).strip()} [kb:{entry.group(1)}]")
    if "transferToHuman" in tools and WANTS_PERSON.search(question):
        return ToolCalls([("transferToHuman",
                           {"reason": f"The customer asked to talk to a person: \"{short}\""})])
    answer = faq_answer(question)
    if answer:
        return Reply(answer)
    if "askHuman" in tools and short:
        arguments = {"question": f"A customer asks: \"{short}\" What should I tell them?"}
        suggestion = guess(question) if takes_suggestion(request) else None
        if suggestion:
            arguments["suggested_answer"] = suggestion
        return ToolCalls([("askHuman", arguments)])
    return Reply(GENERIC)
