"""Who a request comes from, and counters that slow repeated attempts down: shared by every limiter.

`client_address` is the address of the client, not of a proxy in front of the app: X-Forwarded-For is
read only when the request arrives from an address listed in the TRUSTED_PROXIES setting, and only the
hops those proxies appended are believed (read from the right; the first address that is not a trusted
proxy is the client). Without trusted proxies REMOTE_ADDR is the client, whatever headers say.

`Backoff` counts attempts under a key in Django's cache (Redis in production, so every web process sees
the same counts). The first `free` attempts in a window go ahead; after that one attempt per delay may go
ahead, the delay doubling from `base_s` up to `max_s`. Attempts are counted before they are tried, so a
burst of parallel requests cannot slip in under the count, and the "gate" that lets one attempt through
per delay is taken with an atomic `cache.add`. Nothing is ever locked for good: waiting always works.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def trusted_proxy_networks() -> tuple[Network, ...]:
    """The TRUSTED_PROXIES setting (addresses or CIDR networks) parsed once per value."""
    return _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.9:51234"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def client_address(request: HttpRequest | None) -> str:
    """The client's IP address: REMOTE_ADDR, or the nearest untrusted hop that trusted proxies recorded."""
    if request is None:
        return "unknown"
    remote = _address(request.META.get("REMOTE_ADDR", "") or "")
    if remote is None:
        return "unknown"
    networks = trusted_proxy_networks()

    def trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(addr in net for net in networks)

    client = remote
    if not trusted(client):
        return str(client)
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:
            break  # garbage a trusted proxy passed on from the client: the last good hop is all we know
        client = addr
        if not trusted(addr):
            break
    return str(client)


@dataclass(frozen=True)
class Backoff:
    """A slow-down policy: `free` attempts per `window_s`, then one per delay (base_s doubling to max_s)."""

    prefix: str
    free: int
    window_s: int
    base_s: float
    max_s: float

    def delay_s(self, beyond: int) -> float:
        """Seconds between attempts once `beyond` attempts past the free ones were made."""
        return min(self.max_s, self.base_s * 2 ** max(0, beyond - 1))

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}:{key}:n", f"{self.prefix}:{key}:gate"

    def take(self, key: str) -> float:
        """Count one attempt; 0.0 when it may go ahead, else the seconds to wait (and it is not counted)."""
        count_key, gate_key = self._keys(key)
        n = _incr(count_key, self.window_s)
        if n <= self.free:
            return 0.0
        delay = self.delay_s(n - self.free)
        now = time.time()
        if cache.add(gate_key, now + delay, timeout=math.ceil(delay)):
            return 0.0  # this attempt holds the gate: the next one waits `delay`
        _decr(count_key)  # a refused attempt tried nothing
        until = cache.get(gate_key)
        return max(1.0, float(until or now + delay) - now)

    def hold(self, key: str) -> None:
        """Once the free attempts are used up, make the next one wait from now (after a failure, a new account)."""
        count_key, gate_key = self._keys(key)
        n = int(cache.get(count_key) or 0)
        if n >= self.free:
            delay = self.delay_s(n - self.free + 1)
            cache.set(gate_key, time.time() + delay, timeout=math.ceil(delay))

    def release(self, key: str) -> None:
        """The attempt succeeded and must not count (a shared scope: others' failures stay counted)."""
        _decr(self._keys(key)[0])

    def clear(self, key: str) -> None:
        """Forget every attempt under `key` (a success in the scope that belongs to one account)."""
        cache.delete_many(list(self._keys(key)))

    def count(self, key: str) -> int:
        """Attempts counted under `key` in the current window."""
        return int(cache.get(self._keys(key)[0]) or 0)


def _incr(key: str, window_s: int) -> int:
    # add() starts the window at the first attempt; every later attempt extends it (touch), so a steady
    # attacker never sees the count reset.
    if cache.add(key, 1, timeout=window_s):
        return 1
    try:
        value = int(cache.incr(key))
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=window_s)
        return 1
    cache.touch(key, timeout=window_s)
    return value


def _decr(key: str) -> None:
    try:
        if int(cache.decr(key)) < 0:
            cache.set(key, 0)
    except ValueError:  # expired meanwhile: nothing to give back
        pass
