"""Channels: thin adapters between a transport and ``Bot.handle``."""
