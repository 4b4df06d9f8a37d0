"""API tokens and scopes: who may read, who may change, who may administer.

A token is `lt_` followed by 43 random URL-safe characters. Only its SHA-256 is stored (a random
256-bit secret needs no slow hash), with a name, a scope, an optional experiment it is limited to,
an expiry and its last use. Scopes are ordered: `read` < `write` < `admin`; a token has what its
scope and every lower one allow.

Which scope a view needs: `@requires("admin")` on the view, else `read` for GET/HEAD/OPTIONS and
`write` for every other method. Whether auth is asked at all: `Settings.auth` (docs/security.md).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from livetrain.errors import LivetrainError, NotFound, ValidationError
from livetrain.store.entities import Token

SCOPES = ("read", "write", "admin")
TOKEN_PREFIX = "lt_"
SHOWN_PREFIX = 10  # characters of a token kept in clear to recognise it: `lt_` and 7 more
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
USE_RECORD_INTERVAL = 60.0  # a token's last use is written at most once a minute

F = TypeVar("F", bound=Callable[..., Any])


class Unauthorized(LivetrainError):
    """No token, or one that is not (or no longer) valid."""

    code = "unauthorized"
    status_code = 401


class Forbidden(LivetrainError):
    """A valid token whose scope or experiment does not cover the request."""

    code = "forbidden"
    status_code = 403


def requires(scope: str) -> Callable[[F], F]:
    """Mark a view as needing `scope` (instead of the one its method implies)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def mark(view: F) -> F:
        view.livetrain_scope = scope  # type: ignore[attr-defined]
        return view

    return mark


def required_scope(view: Callable[..., Any] | None, method: str) -> str:
    """The scope a request to `view` with `method` needs."""
    marked = getattr(view, "livetrain_scope", None)
    if marked:
        return marked
    return "read" if method.upper() in READ_METHODS else "write"


def scope_covers(have: str, need: str) -> bool:
    """Whether a token of scope `have` may do what needs `need`."""
    return SCOPES.index(have) >= SCOPES.index(need)


def hash_token(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `90m`, `2w`, `45s` as seconds; a ValidationError otherwise."""
    match = DURATION.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ValidationError(f"a duration is a positive number and a unit (s, m, h, d, w), like 30d; got {text!r}")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Principal:
    """Who is asking: a token's identity and limits (or everyone, when auth is off)."""

    token_id: str | None
    name: str
    scope: str
    experiment_id: str | None = None

    def allows(self, need: str) -> bool:
        return scope_covers(self.scope, need)

    @property
    def label(self) -> str:
        """How records of who did something name this principal."""
        return f"token:{self.name}" if self.token_id else self.name


OPEN = Principal(token_id=None, name="anonymous", scope="admin")  # auth off: loopback default, as before tokens


class TokenService:
    """Create, list, revoke and check tokens in the metadata store."""

    def __init__(self, store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._usable_cache: tuple[float, bool] | None = None
        self._recorded_use: dict[str, float] = {}

    def create(self, name: str, scope: str, *, expires_in: str | float | None = None,
               experiment_id: str | None = None, created_by: str | None = None) -> tuple[Token, str]:
        """A new token and its secret (shown once; only its hash is kept)."""
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise ValidationError("a token needs a name of 1 to 200 characters")
        if scope not in SCOPES:
            raise ValidationError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
        if experiment_id is not None and self.store.get_experiment(experiment_id) is None:
            raise NotFound(f"no experiment {experiment_id!r}")
        if experiment_id is not None and scope == "admin":
            raise ValidationError("an admin token cannot be limited to one experiment")
        now = self.clock()
        seconds = parse_duration(expires_in) if isinstance(expires_in, str) else expires_in
        if seconds is not None and seconds <= 0:
            raise ValidationError("expires_in must be positive")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(id=uuid.uuid4().hex, name=name, prefix=secret[:SHOWN_PREFIX], scope=scope,
                      experiment_id=experiment_id, created_by=created_by, created_at=now,
                      expires_at=now + seconds if seconds else None)
        self.store.add_token(token, hash_token(secret))
        self._usable_cache = None
        return token, secret

    def list(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [t.to_dict(now) for t in self.store.list_tokens()]

    def revoke(self, token_id: str) -> Token:
        token = self.store.get_token(token_id)
        if token is None:
            raise NotFound(f"no token {token_id!r}")
        self.store.revoke_token(token_id, self.clock())
        self._usable_cache = None
        return self.store.get_token(token_id)

    def any_usable(self, max_age: float = 2.0) -> bool:
        """Whether some token can still be used (cached for `max_age` seconds)."""
        now = self.clock()
        if self._usable_cache and now - self._usable_cache[0] < max_age:
            return self._usable_cache[1]
        usable = self.store.count_usable_tokens(now) > 0
        self._usable_cache = (now, usable)
        return usable

    def authenticate(self, secret: str | None) -> Principal:
        """The principal of a presented token; Unauthorized with the reason otherwise."""
        if not secret:
            raise Unauthorized("this server needs a token: send Authorization: Bearer lt_... "
                               "(create one with `livetrain tokens create`)")
        if not secret.startswith(TOKEN_PREFIX):
            raise Unauthorized("that is not a livetrain token (they start with lt_)")
        token = self.store.token_by_hash(hash_token(secret))
        if token is None:
            raise Unauthorized("unknown token")
        now = self.clock()
        state = token.state(now)
        if state != "active":
            raise Unauthorized(f"token {token.prefix}... is {state}")
        if now - self._recorded_use.get(token.id, 0.0) >= USE_RECORD_INTERVAL:
            self._recorded_use[token.id] = now
            self.store.touch_token(token.id, now)
        return Principal(token_id=token.id, name=token.name, scope=token.scope, experiment_id=token.experiment_id)

    def principal(self, token_id: str | None) -> Principal | None:
        """The principal of a token still usable by id (a page session), or None."""
        token = self.store.get_token(token_id) if token_id else None
        if token is None or token.state(self.clock()) != "active":
            return None
        return Principal(token_id=token.id, name=token.name, scope=token.scope, experiment_id=token.experiment_id)
