"""
Adapters: the edge of slotengine, where storage, clocks and notifications meet the outside world.

- `slotengine.adapters.memory.MemoryStorage`: in this process's memory (the reference; no extra needed).
- `slotengine.adapters.sqlite.SQLiteStorage`: an embedded SQLite file (stdlib ``sqlite3``; no extra needed).
- `slotengine.adapters.clock.SystemClock`: the real clock, the only place slotengine reads it.

This package imports none of them: import the one you use.
"""
