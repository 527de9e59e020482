"""Passwords out of every text that leaves the process: messages, logs, metadata.

:func:`redact` masks every form a PostgreSQL credential is written in: ``user:password@`` in a
URL, ``?password=`` (or ``&password=``) in its query, ``password=...`` in a key=value DSN (quoted
or not), ``PGPASSWORD=...``; and, wherever else they appear, the literal values of the passwords
this process was given (in ``ALEVOR_PG_URL``, ``ALEVOR_DAGSTER_PG_URL`` and ``PGPASSWORD``), so
a driver message that echoes one in some other shape is masked too.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):(?P<secret>[^@\s/]*)@")
_KEYWORDS = r"password|passwd|pwd|pgpassword|sslpassword"
_PARAM = re.compile(
    rf"(?P<key>\b(?:{_KEYWORDS})\b\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\")]+)",
    re.IGNORECASE,
)
# Values shorter than this are not masked as literals (they would mask ordinary words).
_MIN_LITERAL = 4


def redact(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """``text`` with every credential masked (``secrets`` default to :func:`known_secrets`)."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    out = _PARAM.sub(lambda m: f"{m.group('key')}{MASK}", out)
    for secret in known_secrets() if secrets is None else secrets:
        if len(secret) >= _MIN_LITERAL:
            out = out.replace(secret, MASK)
    return out


def dsn_passwords(dsn: str) -> list[str]:
    """The passwords written in a libpq URL or key=value DSN (raw and percent-decoded)."""
    found: list[str] = []
    if "://" in dsn:
        try:
            password = urlsplit(dsn).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    for m in _PARAM.finditer(dsn):
        value = m.group("secret")
        if value[:1] in "'\"" and value[-1:] == value[:1]:
            value = value[1:-1]
        found.append(value)
    return sorted({v for s in found for v in (s, unquote(s)) if v})


def known_secrets() -> tuple[str, ...]:
    """Passwords this process was given through the environment."""
    found = set()
    for name in ("ALEVOR_PG_URL", "ALEVOR_DAGSTER_PG_URL"):
        found.update(dsn_passwords(os.environ.get(name, "")))
    if os.environ.get("PGPASSWORD"):
        found.add(os.environ["PGPASSWORD"])
    return tuple(sorted(found, key=len, reverse=True))
