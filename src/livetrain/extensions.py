"""Extensions, bound to an app by `create_app`.

CORS keeps no per-app state, so one unbound instance serves every app. Socket.IO does:
its server, rooms and clients belong to one app, so each app gets its own `SocketIO`
(two apps in one test process must not hear each other's events).
"""

from flask_cors import CORS
from flask_socketio import SocketIO

from livetrain import jsonsafe

cors = CORS()


def new_socketio(**kwargs) -> SocketIO:
    """An unbound SocketIO for one app; `create_app` calls `init_app` on it. Its packets are
    written by `jsonsafe` (a NaN or infinity in an event arrives as null, not as invalid JSON).
    Given a `message_queue` (and its `channel`) and no app, it is the write-only emitter of a
    process that serves no client (a Celery worker): every server node delivers what it emits."""
    return SocketIO(json=jsonsafe, **kwargs)
