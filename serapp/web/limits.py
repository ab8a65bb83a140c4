"""What one client may cost the server: requests per second (token buckets) and bytes per body."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict

MAX_BODY = 2048  # bytes: the largest request body (an answer is about 150)


class TokenBucket:
    """`capacity` requests at once, refilled at `per_second`; `take` says how long to wait (0: go)."""

    def __init__(self, capacity: float, per_second: float, clock=time.monotonic):
        self.capacity, self.per_second, self.clock = float(capacity), float(per_second), clock
        self.tokens, self.stamp = float(capacity), clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.per_second


class KeyedBuckets:
    """A bucket per key (a client address), the least recently seen forgotten past `max_keys`."""

    def __init__(self, capacity: float, per_second: float, max_keys: int = 10000, clock=time.monotonic):
        self.capacity, self.per_second, self.max_keys, self.clock = capacity, per_second, max_keys, clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        with self._lock:
            bucket = self._buckets.pop(key, None) or TokenBucket(self.capacity, self.per_second, self.clock)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return bucket.take()


class BodyError(ValueError):
    """A request body refused: an HTTP status and one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def read_json(request, limit: int = MAX_BODY):
    """The request's JSON body: refused (413) past `limit` bytes, by its Content-Length or as it
    streams in, never held whole beyond that; refused (400) when not UTF-8 or not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyError(413, f"the request body is larger than {limit} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise BodyError(413, f"the request body is larger than {limit} bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "the request body is not UTF-8 text") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BodyError(400, "the request body is not JSON") from None
