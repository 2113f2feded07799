"""Roundtable: a team of agents debates your question.

The code lives in the top-level folders ``agents/``, ``conversations/``, ``memory/``, ``ui/``,
``api/`` and ``common/``; this package links to them, so that installing Roundtable adds one
module, ``roundtable``, to site-packages and nothing generic.
"""
