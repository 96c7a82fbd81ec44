"""Where a webhook may be called (contract Part 2, "Intake ... webhooks").

Pure rules, no network: the service resolves the host and hands the addresses in.

- A URL is `http` or `https`, names a host, carries no credentials and no
  spaces or control characters, and is at most `URL_LIMIT` characters long.
- A host listed in ITSM_WEBHOOK_ALLOWED_HOSTS (names or addresses) is called
  whatever it resolves to, loopback included.  Otherwise every address the host
  resolves to must be public or itself listed: one private address among public
  ones is enough to refuse, because the connection could go to any of them.
- Public means what `ipaddress` calls global and, on top of that, not
  multicast, not CGNAT (100.64.0.0/10), not reserved; IPv6 forms that carry an
  IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, NAT64) are judged by the
  address they carry, and Teredo tunnels are refused outright (their
  embedded client address cannot be trusted to be where the packet ends up).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

URL_LIMIT = 2000
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")


class WebhookUrlError(ValueError):
    """The URL cannot be a webhook; the message says why, for the `url` field."""


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook URL taken apart: what to resolve, where to connect, what to ask for."""

    scheme: str
    host: str  # a name in lower case, or an address without brackets
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def https(self) -> bool:
        return self.scheme == "https"


def parse_webhook_url(url: str) -> WebhookTarget:
    if len(url) > URL_LIMIT:
        raise WebhookUrlError(f"must be at most {URL_LIMIT} characters")
    if _UNSAFE_CHARACTERS.search(url):
        raise WebhookUrlError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise WebhookUrlError("must be an http or https URL")
    if "@" in parts.netloc:
        raise WebhookUrlError("must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookUrlError("must name a host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # The request line is ASCII: other characters go percent-encoded, the rest as given.
    path = quote(path, safe="".join(chr(c) for c in range(0x21, 0x7F)))
    return WebhookTarget(scheme, host.lower(), port or DEFAULT_PORTS[scheme], path)


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for, if it is one of those forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # ::a.b.c.d (not :: or ::1)
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def why_not_public(address: IPAddress) -> str | None:
    """None for a public address, else the kind of address it is (for the log)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return "a Teredo tunnel address"
        carried = carried_ipv4(address)
        if carried is not None:
            reason = why_not_public(carried)
            return f"an IPv6 form of {reason}" if reason else None
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "shared (CGNAT)"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (not address.is_global, "not global"),
    )
    for hit, kind in checks:
        if hit:
            return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"
    return None


def is_public(address: IPAddress) -> bool:
    return why_not_public(address) is None


def _listed(allowed_hosts: tuple[str, ...]) -> tuple[set[str], set[IPAddress]]:
    names: set[str] = set()
    addresses: set[IPAddress] = set()
    for entry in allowed_hosts:
        entry = entry.strip().lower().rstrip(".")
        if not entry:
            continue
        literal = _address(entry)
        if literal is not None:
            addresses.add(literal)
        else:
            names.add(entry)
    return names, addresses


def callable_addresses(
    host: str, resolved: list[str], allowed_hosts: tuple[str, ...]
) -> list[str]:
    """The addresses a webhook on `host` may connect to, in the resolver's order.

    Raises WebhookUrlError when the host resolved to nothing or to any address it
    may not be called at (the whole host is refused, not just that address)."""
    if not resolved:
        raise WebhookUrlError("host resolves to no address")
    names, listed_addresses = _listed(allowed_hosts)
    host_literal = _address(host)
    host_listed = host.lower().rstrip(".") in names or (
        host_literal is not None and host_literal in listed_addresses
    )
    usable: list[str] = []
    for text in resolved:
        address = _address(text)
        if address is None:
            raise WebhookUrlError(f"host resolves to something that is not an address: {text}")
        if not host_listed and address not in listed_addresses:
            reason = why_not_public(address)
            if reason is not None:
                raise WebhookUrlError(
                    f"host {host} resolves to {address}, {reason}; list the host in "
                    "ITSM_WEBHOOK_ALLOWED_HOSTS to allow it"
                )
        if str(address) not in usable:
            usable.append(str(address))
    return usable
