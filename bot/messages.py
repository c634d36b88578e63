"""The bot's refusals and usage hints, in one place, so Slack and Discord say the same.

Each refusal is the reason, then the next step in one short sentence: someone
told "no" should know what to do about it without asking around.
"""

from __future__ import annotations

ASK_USAGE = ("I need a question to look up. Ask me about your team's documents, for example: "
             "`/ask how do I get VPN access?`")
UNAVAILABLE = "I'm temporarily unavailable (my database can't be reached). Please try again in a minute."
SHUTTING_DOWN = "I'm restarting right now, so I can't take this. Please try again in a minute."
ADMIN_ONLY = ("Sorry, only ragbot admins can run admin commands. Ask an admin to run it for you, or to have "
              "your user id added to RAGBOT_ADMIN_USER_IDS.")
NOT_ENABLED = ("This bot is not enabled in this workspace/server. Ask whoever runs ragbot here to enable it "
               "(RAGBOT_SLACK_TEAM_IDS / RAGBOT_DISCORD_GUILD_IDS).")
NO_COLLECTIONS_HERE = ("No document collection is readable in this channel. Ask a ragbot admin to grant one "
                       "here (admin command `collections grant NAME here`).")
NOT_FOUND_NEXT_STEP = "Try the words the documents would use, or ask an admin which collections this channel reads."
CORRECTION_EMPTY = "A correction needs some text. Write what the answer should have said and send it again."
UNKNOWN_BUTTON = "That button does not belong to an answer I know. Ask the question again for a fresh answer."


def question_too_long(length: int, limit: int) -> str:
    return f"Your question is {length:,} characters long; the limit is {limit:,}. Please shorten it and ask again."


def rate_limited(wait_s: float) -> str:
    return f"You're asking faster than I can answer. Try again in {wait_s:.0f} s."


def corrections_rate_limited(wait_s: float) -> str:
    return f"You're sending corrections faster than I can take them. Try again in {wait_s:.0f} s."


def correction_too_long(limit: int) -> str:
    return f"Corrections are limited to {limit:,} characters. Please shorten yours and send it again."


def command_too_long(length: int, limit: int) -> str:
    return f"The command is {length:,} characters long; the limit is {limit:,}. Please shorten it and run it again."


def unknown_answer(code: str) -> str:
    return f"I can't find answer {code} any more. Ask the question again for a fresh answer."


def answer_failed(code: str | None) -> str:
    """An unexpected failure while answering; ``code`` (when the attempt was logged) lets the team find it."""
    if code is None:
        return "Something went wrong while answering. Please try again in a moment."
    return (f"Something went wrong while answering (answer {code}). Please try again; if it keeps failing, "
            f"give the team the code {code}.")


def failed(reference: str) -> str:
    """A platform adapter's own failure (the core never answered): the reference is in the log."""
    return (f"Sorry, something went wrong on my side (reference {reference}). Please try again; if it keeps "
            "failing, give the team that reference.")
