"""The Socket.IO side: rooms, subscriptions, and the one emitter every event goes through.

Event names and payloads are described in docs/events.md.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_socketio import SocketIO, join_room, leave_room

ROOM_KEYS = ("run_id", "network_id", "experiment_id")


def room_name(key: str, value: str) -> str:
    """`run:abc`, `network:def`, `experiment:ghi`."""
    return f"{key.removesuffix('_id')}:{value}"


class Emitter:
    """Sends events to the rooms that asked for them, and to everyone when broadcasting."""

    def __init__(self, socketio: SocketIO, broadcast: bool) -> None:
        self.socketio = socketio
        self.broadcast = broadcast

    def training(self, event: str, payload: dict[str, Any]) -> None:
        """A run's event: its run, network and experiment rooms (or everyone)."""
        if self.broadcast:
            self.socketio.emit(event, payload)
            return
        rooms = [room_name(key, payload[key]) for key in ROOM_KEYS if payload.get(key)]
        self.socketio.emit(event, payload, to=rooms)

    def resource(self, event: str, payload: dict[str, Any]) -> None:
        """A resource was created or deleted: every client hears it."""
        self.socketio.emit(event, payload)


def register_handlers(socketio: SocketIO, services) -> None:
    """Attach connect / subscribe / unsubscribe handlers."""

    @socketio.on("connect")
    def on_connect(auth=None):
        socketio.emit("server_info", services.server_info(), to=request.sid)

    @socketio.on("subscribe")
    def on_subscribe(data=None):
        key, value, error = _room_request(data)
        if error:
            return {"ok": False, "error": "validation_error", "message": error}
        if not services.exists(key, value):
            return {"ok": False, "error": "not_found", "message": f"no {key.removesuffix('_id')} {value!r}"}
        join_room(room_name(key, value))
        return {"ok": True, "room": room_name(key, value)}

    @socketio.on("unsubscribe")
    def on_unsubscribe(data=None):
        key, value, error = _room_request(data)
        if error:
            return {"ok": False, "error": "validation_error", "message": error}
        leave_room(room_name(key, value))
        return {"ok": True, "room": room_name(key, value)}


def _room_request(data: Any) -> tuple[str, str, str | None]:
    if not isinstance(data, dict):
        return "", "", "send an object with run_id, network_id or experiment_id"
    keys = [key for key in ROOM_KEYS if key in data]
    if len(keys) != 1:
        return "", "", "send exactly one of run_id, network_id or experiment_id"
    value = data[keys[0]]
    if not isinstance(value, str) or not value or len(value) > 64:
        return "", "", f"{keys[0]} must be a non-empty string"
    return keys[0], value, None
