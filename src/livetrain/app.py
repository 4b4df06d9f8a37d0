"""The application factory."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from typing import Any

from apiflask import APIFlask
from werkzeug.exceptions import HTTPException

from livetrain import __version__
from livetrain.config import Settings
from livetrain.errors import LivetrainError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
}


def _message(error) -> str:
    """A readable message; validation details become `field: problem` lines."""
    detail = getattr(error, "detail", None) or {}
    problems = []
    for location in detail.values() if isinstance(detail, dict) else []:
        if isinstance(location, dict):
            for field, messages in location.items():
                text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
                problems.append(text if field == "_schema" else f"{field}: {text}")
    return "; ".join(problems) or error.message


def create_app(config: dict[str, Any] | None = None, *, async_mode: str | None = None) -> APIFlask:
    """Build a livetrain app: settings from defaults, `LIVETRAIN_*` variables, then `config`."""
    from livetrain import api, events, web
    from livetrain.extensions import cors, new_socketio
    from livetrain.services import Livetrain

    settings = Settings.load(config)
    mode = async_mode or settings.async_mode
    app = APIFlask(
        "livetrain",
        title="livetrain API",
        version=__version__,
        spec_path="/api/openapi.json",
        docs_path="/api/docs",
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key or "livetrain-dev",
        MAX_CONTENT_LENGTH=settings.max_content_length,
        VALIDATION_ERROR_STATUS_CODE=400,
        JSON_SORT_KEYS=False,
        SYNC_LOCAL_SPEC=False,
        LIVETRAIN=settings,
    )

    @app.error_processor
    def http_error(error):
        code = HTTP_CODES.get(error.status_code, "error")
        if error.status_code in (400, 422) and error.detail:
            code = "validation_error"
        body = {"error": code, "message": _message(error)}
        if error.status_code == 413:
            body["message"] = f"request body is over the limit of {settings.max_content_length} bytes"
        return body, error.status_code, error.headers

    @app.errorhandler(LivetrainError)
    def livetrain_error(error: LivetrainError):
        if error.status_code >= 500:
            log.error("%s", error)
        return error.to_dict(), error.status_code

    @app.errorhandler(HTTPException)
    def http_exception(error: HTTPException):
        code = HTTP_CODES.get(error.code or 500, "error")
        message = error.description or error.name
        if error.code == 413:
            message = f"request body is over the limit of {settings.max_content_length} bytes"
        return {"error": code, "message": message}, error.code

    cors.init_app(app, resources={r"/api/*": {"origins": settings.cors_origins}})
    socketio = new_socketio()
    socketio.init_app(app, async_mode=mode, cors_allowed_origins=settings.cors_origins)
    emitter = events.Emitter(socketio, settings.broadcast_events)
    container = Livetrain(settings, emitter, spawn=socketio.start_background_task,
                          sleep=socketio.sleep, async_mode=mode)
    app.extensions["livetrain"] = container
    api.register(app)
    app.register_blueprint(web.bp)
    events.register_handlers(socketio, container)
    atexit.register(container.close)
    return app
