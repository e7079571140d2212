"""Records the emulator keeps (API calls, response_url posts) and its fault injection."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiCall:
    """One Web API call as the emulator saw it."""

    method: str
    params: dict[str, Any]
    response: dict[str, Any]
    status: int = 200


@dataclass
class ResponsePost:
    """One POST the app made to a `response_url`."""

    url: str
    payload: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fault:
    error: str
    status: int
    retry_after: int
    times: int


class FaultBook:
    """Queued failures per Web API method, consumed by the next calls."""

    def __init__(self) -> None:
        self._faults: dict[str, list[Fault]] = defaultdict(list)

    def add(self, method: str, fault: Fault) -> None:
        self._faults[method].append(fault)

    def clear(self, method: str) -> None:
        self._faults.pop(method, None)

    def take(self, method: str) -> Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault


def message_view(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message with the keys tests read always present (None when absent)."""
    for key in ("user", "bot_id", "text", "blocks", "thread_ts", "metadata", "reactions",
                "username"):
        message.setdefault(key, None)
    return message
