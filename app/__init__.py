"""Composition root: the only package that imports both the chat adapters and the engine.

It reads the settings, builds the engine, the bot core and the platform adapters, and
runs them (CLI, bot runtime, job worker, health server, report)."""
