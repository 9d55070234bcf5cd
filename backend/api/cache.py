"""Small in-process response caches for the two hottest reads.

- The run list: many dashboards poll the same few pages. An entry is valid while the jobs table's
  (row count, newest updated_at) is unchanged, and at most LIST_TTL_S seconds (a worker on another machine
  with a late clock cannot keep an old page alive for long).
- Mask heatmaps: a stored mask never changes, so its rendered body is keyed by the mask row id.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

LIST_TTL_S = 2.0


class LRU:
    def __init__(self, max_entries: int, ttl_s: float | None = None):
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            stored, value = item
            if self.ttl_s is not None and time.monotonic() - stored > self.ttl_s:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = (time.monotonic(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
