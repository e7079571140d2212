"""Modal views of the emulator (`views.open`, `views.push`, `views.update`) and the
`trigger_id`s they need: issued with each interaction, valid for `trigger_ttl` seconds.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from typing import Any

from sandbox.slack_state import SlackError, Workspace


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise SlackError("invalid_arguments") from exc
    return value


class ViewsApi:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.trigger_ttl = 3.0

    def _take_trigger(self, trigger_id: Any) -> dict[str, Any]:
        trigger = self.ws.triggers.get(str(trigger_id or ""))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if time.monotonic() - trigger["issued"] > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        return trigger

    def _new_view(self, spec: Any, *, root: str | None, previous: str | None) -> dict[str, Any]:
        spec = _json(spec)
        if not isinstance(spec, dict) or spec.get("type") not in ("modal", "home"):
            raise SlackError("invalid_arguments")
        ws = self.ws
        view_id = ws.new_id("V")
        view = {
            "id": view_id, "team_id": ws.team_id, "type": spec["type"],
            "blocks": spec.get("blocks", []), "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""), "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": spec.get("title"), "submit": spec.get("submit"), "close": spec.get("close"),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "root_view_id": root or view_id, "previous_view_id": previous,
            "app_id": ws.app_id, "external_id": spec.get("external_id", ""),
            "app_installed_team_id": ws.team_id, "bot_id": ws.bot_id,
        }
        ws.views[view_id] = view
        return view

    def views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._take_trigger(params.get("trigger_id"))
        view = self._new_view(params.get("view"), root=None, previous=None)
        view["user"] = trigger["user"]
        return {"ok": True, "view": _public_view(view)}

    def views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._take_trigger(params.get("trigger_id"))
        under = self.ws.views.get(trigger.get("view_id") or "")
        view = self._new_view(params.get("view"), root=under and under["root_view_id"],
                              previous=under and under["id"])
        view["user"] = trigger["user"]
        return {"ok": True, "view": _public_view(view)}

    def views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        """Publish a person's Home tab (`user_id`, a `home` view; `hash` must match the
        published one when given)."""
        ws = self.ws
        user_id = str(params.get("user_id") or "")
        if not user_id:
            raise SlackError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] missing required field: user_id"]})
        if user_id not in ws.users or ws.users[user_id].is_bot:
            raise SlackError("user_not_found")
        spec = check_home_view(params.get("view"))
        old = ws.home_views.get(user_id)
        if params.get("hash") and (old is None or params["hash"] != old["hash"]):
            raise SlackError("hash_conflict")
        view = self._new_view(spec, root=None, previous=None)
        del ws.views[view["id"]]  # a Home tab is not a modal stack
        if old is not None:
            view["id"] = view["root_view_id"] = old["id"]
        view["user"] = user_id
        ws.home_views[user_id] = view
        return {"ok": True, "view": _public_view(view)}

    def views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        view_id = params.get("view_id")
        if not view_id and params.get("external_id"):
            view_id = next((v["id"] for v in ws.views.values()
                            if v["external_id"] == params["external_id"]), None)
        old = ws.views.get(str(view_id or ""))
        if old is None:
            raise SlackError("not_found")
        if params.get("hash") and params["hash"] != old["hash"]:
            raise SlackError("hash_conflict")
        new = self._new_view(params.get("view"), root=old["root_view_id"],
                             previous=old["previous_view_id"])
        del ws.views[new["id"]]
        new.update(id=old["id"], user=old.get("user"), state=old["state"])
        if new["root_view_id"] == new["id"]:
            new["root_view_id"] = old["id"]
        ws.views[old["id"]] = new
        return {"ok": True, "view": _public_view(new)}


MAX_HOME_BLOCKS = 100


def _invalid(message: str, pointer: str) -> SlackError:
    """`invalid_arguments` with the detail Slack gives in `response_metadata.messages`."""
    return SlackError("invalid_arguments", response_metadata={
        "messages": [f"[ERROR] {message} [json-pointer:{pointer}]"]})


def check_home_view(spec: Any) -> dict[str, Any]:
    """A Home view as views.publish checks it: type `home`, at most 100 blocks, each with a
    type, block ids unique."""
    spec = _json(spec)
    if not isinstance(spec, dict):
        raise _invalid("must provide an object", "/view")
    if spec.get("type") != "home":
        raise _invalid("must be 'home'", "/view/type")
    blocks = spec.get("blocks")
    if not isinstance(blocks, list):
        raise _invalid("must provide an array", "/view/blocks")
    if len(blocks) > MAX_HOME_BLOCKS:
        raise _invalid(f"no more than {MAX_HOME_BLOCKS} items allowed", "/view/blocks")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or not block.get("type"):
            raise _invalid("missing required field: type", f"/view/blocks/{index}")
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                raise _invalid(f"duplicate block_id {block_id}", f"/view/blocks/{index}")
            seen.add(block_id)
    return spec


def _public_view(view: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(view)
    out.pop("user", None)
    return out
