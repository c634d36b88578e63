"""Slack adapter (slack-bolt): ``/ask``, mentions, DMs, feedback buttons, corrections, ``/ragbot-admin``.

Imports the bot core only; everything platform-neutral (limits, access, admin
rights, logging) happens there.
"""

from adapters.slack.app import SlackConfigError, build_app, check_credentials

__all__ = ["SlackConfigError", "build_app", "check_credentials"]
