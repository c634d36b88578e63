"""Feedback buttons that survive restarts, and the correction form.

The buttons are ``DynamicItem``s: their ``custom_id`` carries the interaction
id (``ragbot:up:123``), and the client registers the class with
``add_dynamic_items``, so a click is routed by pattern — no per-message view
has to be in memory, and a button posted before a restart keeps working.

What a click or a submitted form does is the client's business (``FeedbackRoutes``, which
``RagbotClient`` implements with the handlers): this module imports no handler, so the handlers
can import the form without a cycle.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal, Protocol

import discord

FeedbackAction = Literal["up", "down", "fix"]
CUSTOM_ID_TEMPLATE = r"ragbot:(?P<action>up|down|fix):(?P<interaction_id>[0-9]{1,18})"
CORRECTION_MAX_CHARS = 4000  # Discord's text input limit, and the core's

_LOOKS: dict[str, tuple[discord.ButtonStyle, str | None, str]] = {
    "up": (discord.ButtonStyle.secondary, None, "👍"),
    "down": (discord.ButtonStyle.secondary, None, "👎"),
    "fix": (discord.ButtonStyle.secondary, "Suggest a correction", "✏️"),
}


class FeedbackRoutes(Protocol):
    """What the client does with a click, a submitted correction, or a form that failed."""

    async def feedback_clicked(self, interaction: discord.Interaction[Any], action: FeedbackAction,
                               interaction_id: int) -> None: ...

    async def correction_submitted(self, interaction: discord.Interaction[Any], interaction_id: int,
                                   text: str) -> None: ...

    async def interaction_failed(self, interaction: discord.Interaction[Any], error: BaseException) -> None: ...


def routes(interaction: discord.Interaction[Any]) -> FeedbackRoutes:
    """The client the interaction arrived on, seen as the routes it implements."""
    client: FeedbackRoutes = interaction.client
    return client


def custom_id(action: FeedbackAction, interaction_id: int) -> str:
    return f"ragbot:{action}:{interaction_id}"


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID_TEMPLATE):
    """👍 / 👎 / "Suggest a correction" for one answer (its interaction id is in the custom id)."""

    def __init__(self, action: FeedbackAction, interaction_id: int) -> None:
        style, label, emoji = _LOOKS[action]
        super().__init__(discord.ui.Button(style=style, label=label, emoji=emoji,
                                           custom_id=custom_id(action, interaction_id)))
        self.action: FeedbackAction = action
        self.interaction_id = interaction_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: Any, /) -> FeedbackButton:
        return cls(match["action"], int(match["interaction_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await routes(interaction).feedback_clicked(interaction, self.action, self.interaction_id)


def feedback_view(interaction_id: int) -> discord.ui.View:
    """A view made only of dynamic items: nothing is kept in memory per message."""
    view = discord.ui.View(timeout=None)
    for action in ("up", "down", "fix"):
        view.add_item(FeedbackButton(action, interaction_id))
    return view


class CorrectionModal(discord.ui.Modal):
    """The "Suggest a correction" form. It lives in memory while open (15 minutes at most)."""

    def __init__(self, interaction_id: int) -> None:
        # unique per opening: two people correcting the same answer get separate forms
        super().__init__(title="Suggest a correction", timeout=900,
                         custom_id=f"ragbot:correction:{interaction_id}:{secrets.token_hex(4)}")
        self.interaction_id = interaction_id
        self.text: discord.ui.TextInput[CorrectionModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, custom_id="correction", min_length=1,
            max_length=CORRECTION_MAX_CHARS, placeholder="The correct answer, ideally with where it is written.")
        self.add_item(discord.ui.Label(text="What should the answer say?",
                                       description="About the answer you clicked. An admin reviews it before it "
                                                   "is used for training.",
                                       component=self.text))

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        await routes(interaction).correction_submitted(interaction, self.interaction_id, self.text.value)

    # discord.py's Modal.on_error drops BaseView's `item` argument; this matches Modal's, not BaseView's
    async def on_error(  # type: ignore[override]  # Modal's signature (see above); discord.py's stubs give BaseView's
        self, interaction: discord.Interaction[Any], error: Exception, /,
    ) -> None:
        await routes(interaction).interaction_failed(interaction, error)
