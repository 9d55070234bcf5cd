"""Small in-process response caches for the two hottest reads (cachetools, behind a lock: its caches are not
thread-safe and the sync endpoints run in a threadpool).

- The run list: many dashboards poll the same few pages. An entry is valid while the jobs table's
  (row count, newest updated_at) is unchanged (it is part of the key), and at most LIST_TTL_S seconds (a
  worker on another machine with a late clock cannot keep an old page alive for long).
- Mask heatmaps: a stored mask never changes, so its rendered body is keyed by the mask row id.
"""

import threading
from collections.abc import Hashable
from typing import Any

from cachetools import LRUCache, TTLCache

LIST_TTL_S = 2.0


class LRU:
    """At most `max_entries` values, least recently used evicted first; with `ttl_s`, also expired after that
    many seconds."""

    def __init__(self, max_entries: int, ttl_s: float | None = None):
        self._data = TTLCache(max_entries, ttl_s) if ttl_s is not None else LRUCache(max_entries)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
