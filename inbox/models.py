"""The inbox keeps no table of its own: who handles a chat, its operator and the hand-off times
are fields of `chat.Chat` (chat/models.py), operator messages are `chat.Message` rows with role
`operator`, presence is a short-lived cache key (inbox/presence.py), and the kept live events are
in the event storage (inbox/events.py)."""
