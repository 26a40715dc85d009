"""Signals of the bots app, so that apps depending on bots (sources) can react to bot changes
without bots importing them."""

from django.dispatch import Signal

# Sent after a bot profile change is committed. kwargs: tenant, bot, changed (set of field names).
bot_profile_changed = Signal()
