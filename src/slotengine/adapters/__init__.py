"""
Adapters: the edge of slotengine, where storage, clocks and notifications meet the outside world.

Storage (`slotengine.ports.Storage`):

- `slotengine.adapters.memory.MemoryStorage`: in this process's memory (the reference; no extra needed).
- `slotengine.adapters.sqlite.SQLiteStorage`: an embedded SQLite file (stdlib ``sqlite3``; no extra needed).
- `slotengine.adapters.postgres.PostgresStorage`: PostgreSQL for many processes and servers
  (``pip install slotengine[postgres]``).

Notifiers (`slotengine.ports.Notifier`), in `slotengine.adapters.notifiers`: console and logging, e-mail over
SMTP with an ``.ics`` attached, a signed webhook, a router by channel, and Apprise for SMS, Telegram and
WhatsApp (``pip install slotengine[notify]``).

Clock: `slotengine.adapters.clock.SystemClock`, the only place slotengine reads the real time.

This package imports none of them: import the one you use.
"""
