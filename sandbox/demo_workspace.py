"""The seeded workspace of `python -m bot sandbox`: who is in it, which channels it has.

Our company runs support in two customer channels and one staff channel:

- `#acme-support`: a Slack Connect channel shared with the customer's company, Acme;
  Carol writes from Acme's own workspace (another team id), Sam is in it with her.
- `#globex`: a channel of our workspace where Gwen from Globex is a single-channel guest.
- `#support`: the internal staff channel (its members are the staff: Sam and Sky).
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.slack_emulator import SlackEmulator

TEAM = "T0SANDBOX"
ACME_TEAM = "T0ACME"

BOT_USER = "U0BOT"
CAROL = "U0CAROL"
GWEN = "U0GWEN"
SAM = "U0SAM"
SKY = "U0SKY"

ACME = "C0ACME"
GLOBEX = "C0GLOBEX"
SUPPORT = "C0SUPPORT"

CUSTOMER_CHANNELS = [ACME, GLOBEX]


@dataclass(frozen=True)
class Identity:
    """Someone the page lets you act as."""

    user_id: str
    label: str
    role: str  # customer | staff
    about: str


IDENTITIES = [
    Identity(CAROL, "Carol (Acme)", "customer",
             "Customer at Acme, writing through the Slack Connect channel #acme-support."),
    Identity(GWEN, "Gwen (Globex)", "customer",
             "Customer at Globex, a single-channel guest in #globex."),
    Identity(SAM, "Sam", "staff", "Support team member."),
    Identity(SKY, "Sky", "staff", "Support team member."),
]


@dataclass(frozen=True)
class DemoChannel:
    channel_id: str
    name: str
    kind: str  # customer | support
    topic: str


CHANNELS = [
    DemoChannel(ACME, "acme-support", "customer",
                "Shared with Acme (Slack Connect) · the bot answers customers here"),
    DemoChannel(GLOBEX, "globex", "customer",
                "Globex's guest channel · the bot answers customers here"),
    DemoChannel(SUPPORT, "support", "support",
                "Staff only · the bot asks for help and reports cases here"),
]


def build_emulator() -> SlackEmulator:
    """A fresh emulator holding the demo workspace (not started yet)."""
    emu = SlackEmulator(team_id=TEAM, bot_user_id=BOT_USER, bot_name="supportbot",
                        signing_secret="sandbox-signing-secret", bot_token="xoxb-sandbox",
                        app_token="xapp-sandbox")
    emu.add_user(CAROL, "carol", real_name="Carol Jones", team_id=ACME_TEAM,
                 display_name="Carol")
    emu.add_user(GWEN, "gwen", real_name="Gwen Park", is_restricted=True,
                 display_name="Gwen")
    emu.add_user(SAM, "sam", real_name="Sam Rivera", display_name="Sam")
    emu.add_user(SKY, "sky", real_name="Sky Chen", display_name="Sky")
    emu.add_channel(ACME, "acme-support", members=[CAROL, SAM, SKY], is_ext_shared=True)
    emu.add_channel(GLOBEX, "globex", members=[GWEN, SAM, SKY])
    emu.add_channel(SUPPORT, "support", members=[SAM, SKY])
    return emu
