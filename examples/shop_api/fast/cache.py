"""The fast mode's item cache: bounded, with a TTL; Redis when REDIS_URL is set."""

import logging
import time
from collections import OrderedDict

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from examples.shop_api.common.metrics import Metrics

CACHE_MAX_ENTRIES = 2_048
CACHE_TTL_SECONDS = 60
REDIS_KEY_PREFIX = "shop_api:item:"

logger = logging.getLogger(__name__)


class MemoryCache:
    """In-process LRU cache with a TTL; both bound its memory."""

    backend = "memory"

    def __init__(
        self,
        metrics: Metrics,
        max_entries: int = CACHE_MAX_ENTRIES,
        ttl_seconds: float = CACHE_TTL_SECONDS,
    ) -> None:
        self.metrics = metrics
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] < time.monotonic():
            del self._entries[key]
            entry = None
        self.metrics.count_cache(hit=entry is not None)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: bytes) -> None:
        self._entries[key] = (time.monotonic() + self.ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def size(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Redis-backed cache; keys expire after the TTL. A Redis outage degrades to misses."""

    backend = "redis"

    def __init__(
        self,
        metrics: Metrics,
        redis_url: str,
        ttl_seconds: int = CACHE_TTL_SECONDS,
        key_prefix: str = REDIS_KEY_PREFIX,
    ) -> None:
        self.metrics = metrics
        self.ttl_seconds = ttl_seconds
        self.key_prefix = key_prefix
        self.client = aioredis.Redis.from_url(
            redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.client.get(self.key_prefix + key)
        except RedisError as error:
            logger.warning("item cache unavailable, reading the database: %s", error)
            value = None
        self.metrics.count_cache(hit=value is not None)
        return value  # type: ignore[return-value]  # bytes: the client does not decode answers

    async def set(self, key: str, value: bytes) -> None:
        try:
            await self.client.set(self.key_prefix + key, value, ex=self.ttl_seconds)
        except RedisError as error:
            logger.warning("item cache unavailable, not caching: %s", error)

    async def size(self) -> int:
        """Keys under our prefix; bounded by the TTL, counted with SCAN (never KEYS)."""
        try:
            count = 0
            async for _key in self.client.scan_iter(match=self.key_prefix + "*", count=1_000):
                count += 1
            return count
        except RedisError:
            return 0

    async def close(self) -> None:
        await self.client.aclose()


def create_cache(metrics: Metrics, redis_url: str | None) -> MemoryCache | RedisCache:
    """Redis when ``redis_url`` is given, the in-process cache otherwise."""
    if redis_url:
        return RedisCache(metrics, redis_url)
    return MemoryCache(metrics)
