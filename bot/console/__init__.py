"""The agents' console: tickets handed over by the assistant, answered by people.

Served by the gateway under `/console` (`bot.console.app.routes`). Agents log in
with a password (argon2id), work the queue of open tickets, read the whole
conversation and the applicant's registration, and reply in the person's own
Telegram or SMS thread; supervisors also see the queue figures, the agents'
activity, the registration funnel and the audit log. Create the first supervisor
with `make supervisor NAME=name` (`python -m bot.console.admin`).

This package's import is light on purpose (no app, no templates), so the handoff
loop can import `bot.console.presence` without pulling in the web layer.
"""
