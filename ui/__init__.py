"""Roundtable in the browser: a Chainlit app over the ``conversations`` event stream.

Modules, one concern each: ``app`` (the composition root and Chainlit's callbacks), ``chats``
(what each callback does for the session in hand), ``session`` (one browser session's
debate as a background task), ``render`` (events to Chainlit messages and steps),
``history`` (the SQL data layer and thread <-> transcript mapping), ``auth`` (users),
``replay_view`` (listing and replaying transcripts), ``export`` (Markdown and JSON),
``downloads`` (the HTTP route the export links point at), ``panel`` (chat settings),
``commands`` (what the person typed), ``server`` and ``cli`` (starting it). Only ``app`` and
the modules it calls import Chainlit; the launcher does not.

Depends on ``conversations`` (its public surface) and ``common``; nothing depends on ``ui``.
"""
