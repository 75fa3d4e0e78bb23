"""What may be shown of an endpoint URL, and what is unsafe about reaching it.

Kept apart from :mod:`hookclient.config` (which holds the URL) and
:mod:`hookclient.delivery` (which uses it): the hook, the daemon, the queue commands
and ``doctor`` all print or log URLs, and the warnings are needed where httpx is not
imported.  Standard library only, and cheap: the hook imports it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class Endpoint(Protocol):
        """What the warnings read of an endpoint (hookclient.settings.Endpoint has it)."""

        @property
        def url(self) -> str | None: ...

        @property
        def verify(self) -> bool: ...


def safe_url(url: str | None) -> str | None:
    """``url`` fit to print or log: a password (or a lone user, often a token) in its
    authority becomes ``[REDACTED]``, the user name of ``user:password`` stays; and
    every query value becomes ``[REDACTED]`` too (``?token=...`` is a common way to
    put a secret in a webhook URL), the names stay."""
    if not url or ("@" not in url and "?" not in url):
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest, question, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        authority = (f"{user}:[REDACTED]" if colon else "[REDACTED]") + "@" + host
    if question:
        query, hash_, fragment = query.partition("#")
        pairs = (p.partition("=") for p in query.split("&"))
        query = "&".join(k + ("=[REDACTED]" if eq else "") for k, eq, _v in pairs)
        query += hash_ + fragment
    return f"{scheme}://{authority}{slash}{path}{question}{query}"


def transport_warnings(endpoint: Endpoint) -> list[str]:
    """What is unsafe about how this endpoint is reached, one line each: a bearer token
    and every prompt in clear text over the network, or TLS without verification.  The
    hook and the daemon log these once per process; ``hookclient doctor`` shows them."""
    url = endpoint.url or ""
    scheme, _, rest = url.partition("://")
    url = safe_url(url) or ""
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    host = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    loopback = host.lower() in ("localhost", "::1") or host.startswith("127.")
    warnings = []
    if scheme == "http" and not loopback:
        warnings.append(
            f"endpoint {url} is plain http to a non-loopback host: the token and "
            "every event cross the network unencrypted; use https"
        )
    if scheme == "https" and not endpoint.verify:
        warnings.append(
            f"[endpoint] verify = false: TLS certificates of {host} are not checked, "
            "so anyone on the path can read or change events; set ca_bundle instead"
        )
    return warnings
