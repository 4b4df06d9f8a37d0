"""`livetrain tokens create|list|revoke`: on the database directly, or over REST with `--server`.

Directly is how the first admin token comes to be (nobody can call the REST API for it yet); it
needs what the server needs to reach its database: `--home`, or LIVETRAIN_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from livetrain.errors import LivetrainError


def _direct(args: argparse.Namespace) -> dict[str, Any]:
    from livetrain.auth import TokenService
    from livetrain.config import Settings
    from livetrain.store import MetadataStore

    settings = Settings.load({"home": args.home})
    settings.home.mkdir(parents=True, exist_ok=True)  # the first token may come before the first serve
    store = MetadataStore(settings.resolved_database_url)
    try:
        store.create_schema()
        tokens = TokenService(store)
        if args.action == "create":
            token, secret = tokens.create(args.name, args.scope, expires_in=args.expires,
                                          experiment_id=args.experiment, created_by="cli")
            return {**token.to_dict(time.time()), "token": secret}
        if args.action == "list":
            return {"tokens": tokens.list()}
        return tokens.revoke(_resolve(tokens.list(), args.which)).to_dict(time.time())
    finally:
        store.close()


def _over_rest(args: argparse.Namespace) -> dict[str, Any]:
    from livetrain.client import LivetrainClient

    with LivetrainClient(args.server, token=args.token) as client:
        if args.action == "create":
            body = {"name": args.name, "scope": args.scope}
            if args.expires:
                body["expires_in"] = args.expires
            if args.experiment:
                body["experiment_id"] = args.experiment
            return client.request("POST", "/api/tokens", json=body)
        listed = client.request("GET", "/api/tokens")
        if args.action == "list":
            return listed
        which = _resolve(listed["tokens"], args.which)
        return client.request("DELETE", f"/api/tokens/{which}")


def _resolve(tokens: list[dict[str, Any]], wanted: str) -> str:
    """A token id from an id or from the prefix a token starts with (`lt_abc1234`, or the whole token)."""
    matches = [t["id"] for t in tokens if t["id"] == wanted or wanted.startswith(t["prefix"])]
    if len(matches) != 1:
        raise LivetrainError(f"no single token matches {wanted!r}; use its id from `livetrain tokens list`",
                             code="not_found")
    return matches[0]


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _print(action: str, answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    if action == "create":
        print(answer["token"])
        print(f"token {answer['name']!r} ({answer['scope']}, id {answer['id']}, expires {_when(answer['expires_at'])})"
              " — store it now: it is not shown again", file=sys.stderr)
        return
    rows = answer["tokens"] if action == "list" else [answer]
    print(f"{'ID':32}  {'PREFIX':10}  {'NAME':20}  {'SCOPE':6}  {'EXPERIMENT':12}  {'STATE':8}  "
          f"{'EXPIRES':16}  LAST USED")
    for t in rows:
        print(f"{t['id']:32}  {t['prefix']:10}  {t['name'][:20]:20}  {t['scope']:6}  "
              f"{(t['experiment_id'] or '-')[:12]:12}  {t['state']:8}  {_when(t['expires_at']):16}  "
              f"{_when(t['last_used_at'])}")


def run(args: argparse.Namespace) -> int:
    """Carry out a `tokens` command; 0, or 2 for a wrong request (said in one line), 5 for a refusal."""
    from livetrain.client import ClientError

    try:
        answer = _over_rest(args) if args.server else _direct(args)
    except (LivetrainError, ValueError) as error:
        print(f"livetrain tokens: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2
    except ClientError as error:
        print(f"livetrain tokens: {error.message}", file=sys.stderr)
        return 5
    _print(args.action, answer, args.json)
    return 0
