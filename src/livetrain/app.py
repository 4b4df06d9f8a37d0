"""The application factory."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from typing import Any

from apiflask import APIFlask
from flask import Request, current_app, g, request
from werkzeug.exceptions import HTTPException

from livetrain import __version__
from livetrain.config import Settings
from livetrain.errors import LivetrainError

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parents[1]
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
}


def _flatten(prefix: str, messages, out: list[str]) -> None:
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                _flatten(prefix, value, out)
            elif isinstance(key, int):
                _flatten(f"{prefix}[{key}]", value, out)
            else:
                _flatten(f"{prefix}.{key}" if prefix else str(key), value, out)
    elif isinstance(messages, list):
        text = "; ".join(str(m) for m in messages)
        out.append(f"{prefix}: {text}" if prefix else text)
    else:
        out.append(f"{prefix}: {messages}" if prefix else str(messages))


def _asset_folder(name: str) -> str:
    """Where `templates` or `static` is: in the package if installed from a wheel, else at the checkout's top."""
    packaged = PACKAGE_DIR / name  # setup.py copies them there when it builds a wheel
    return str(packaged if packaged.is_dir() else PROJECT_ROOT / name)


UPLOAD_OVERHEAD = 64 * 1024  # multipart boundaries and form fields around an uploaded file


def _too_large(settings: Settings) -> str:
    return f"request body is over the limit of {settings.max_content_length} bytes (LIVETRAIN_MAX_CONTENT_LENGTH)"


def _message(error) -> str:
    """A readable message; validation details become `field: problem` parts."""
    detail = getattr(error, "detail", None) or {}
    problems: list[str] = []
    if isinstance(detail, dict):
        for location in detail.values():  # {"json": {...}} or {"query": {...}}
            _flatten("", location, problems)
    return "; ".join(problems) or error.message


class UploadRequest(Request):
    """A request whose uploaded files stream to a spool file on the artifact disk, never whole in memory."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        from livetrain.concurrency import cooperate

        spool = current_app.extensions["livetrain"].artifacts.spool(on_write=cooperate)
        g.setdefault("livetrain_spools", []).append(spool)
        return spool


def _socket_origins(origins: str | list):
    """Socket.IO's origin check: the same origin (also as a proxy forwards it) or one of `origins`."""
    if origins == "*":
        return "*"

    def allowed(origin: str | None, environ: dict) -> bool:
        if not origin:
            return True  # not a browser: nothing to protect against
        host = environ.get("HTTP_X_FORWARDED_HOST", environ.get("HTTP_HOST", "")).split(",")[0].strip()
        scheme = environ.get("HTTP_X_FORWARDED_PROTO", environ.get("wsgi.url_scheme", "http")).split(",")[0].strip()
        if origin in (f"{scheme}://{host}", f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST')}"):
            return True
        return any(o.match(origin) if hasattr(o, "match") else o == origin for o in origins)

    return allowed


def create_app(config: dict[str, Any] | None = None, *, async_mode: str | None = None) -> APIFlask:
    """Build a livetrain app: settings from defaults, `LIVETRAIN_*` variables, then `config`."""
    from livetrain import api, events, security, web
    from livetrain.extensions import cors, new_socketio
    from livetrain.services import Livetrain
    from livetrain.services.metrics import Metrics, instrument

    settings = Settings.load(config)
    mode = async_mode or settings.async_mode
    app = APIFlask(
        "livetrain",
        title="livetrain API",
        version=__version__,
        spec_path="/api/openapi.json",
        docs_path="/api/docs",
        template_folder=_asset_folder("templates"),
        static_folder=_asset_folder("static"),
    )
    app.config.update(
        # the hard cap is the larger limit; `check_body` applies the one for the body's kind
        MAX_CONTENT_LENGTH=max(settings.max_content_length, settings.max_upload_bytes + UPLOAD_OVERHEAD),
        VALIDATION_ERROR_STATUS_CODE=400,
        SYNC_LOCAL_SPEC=False,
        LIVETRAIN=settings,
        # Swagger UI from the vendored copy (static/vendor/swagger-ui), so /api/docs works offline
        SWAGGER_UI_CSS="/static/vendor/swagger-ui/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS="/static/vendor/swagger-ui/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS="/static/vendor/swagger-ui/swagger-ui-standalone-preset.js",
        DOCS_FAVICON="data:,",
    )

    app.request_class = UploadRequest
    metrics = Metrics.create()
    instrument(app, metrics)  # first, so its clock also times what `check_body` refuses
    app.json.sort_keys = False  # keep the original server's fields first, as clients see them

    @app.before_request
    def check_body():
        # A body the API cannot read is refused rather than silently ignored.
        length = request.content_length
        if not request.path.startswith("/api/") or not length:
            return None
        upload = request.mimetype == "multipart/form-data"
        if not request.is_json and not upload:
            return {"error": "unsupported_media_type",
                    "message": "send the request body as JSON (Content-Type: application/json)"}, 415
        if upload and length > settings.max_upload_bytes + UPLOAD_OVERHEAD:
            return {"error": "payload_too_large",
                    "message": f"the upload is over the limit of {settings.max_upload_bytes} bytes "
                               "(LIVETRAIN_MAX_UPLOAD_BYTES)"}, 413
        if not upload and length > settings.max_content_length:
            return {"error": "payload_too_large", "message": _too_large(settings)}, 413
        return None

    @app.teardown_request
    def remove_spooled_uploads(_error=None):
        # an upload that became a dataset was moved away; anything else received is removed
        for spool in g.pop("livetrain_spools", []):
            spool.discard()

    @app.error_processor
    def http_error(error):
        code = HTTP_CODES.get(error.status_code, "error")
        if error.status_code in (400, 422) and error.detail:
            code = "validation_error"
        body = {"error": code, "message": _message(error)}
        if body["message"] == "Invalid input type.":
            body["message"] = "the request body must be a JSON object"
        if error.status_code == 413:
            body["message"] = _too_large(settings)
        return body, error.status_code, error.headers

    @app.errorhandler(LivetrainError)
    def livetrain_error(error: LivetrainError):
        if error.status_code >= 500:
            log.error("%s", error)
        return error.to_dict(), error.status_code

    @app.errorhandler(HTTPException)
    def http_exception(error: HTTPException):
        if error.response is not None:  # already answered in the error format (a rate limit's 429)
            return error.response
        code = HTTP_CODES.get(error.code or 500, "error")
        message = error.description or error.name
        if error.code == 400 and request.is_json:
            code, message = "invalid_json", "the request body is not valid JSON"
        if error.code == 413:
            message = _too_large(settings)
        return {"error": code, "message": message}, error.code

    security.init_app(app, settings)  # after check_body: a refused body is refused before anything else
    origins = settings.cors_origin_list()
    cors.init_app(app, resources={r"/api/*": {"origins": origins}})
    socketio = new_socketio()
    queue = {"message_queue": settings.message_queue, "channel": settings.message_queue_channel} \
        if settings.message_queue else {}
    socketio.init_app(app, async_mode=mode, cors_allowed_origins=_socket_origins(origins), **queue)
    emitter = events.Emitter(socketio, settings.broadcast_events, metrics=metrics)
    container = Livetrain(settings, emitter, spawn=socketio.start_background_task,
                          sleep=socketio.sleep, async_mode=mode, metrics=metrics)
    app.extensions["livetrain"] = container
    api.register(app)
    app.register_blueprint(web.bp)
    app.register_blueprint(web.auth_bp)
    events.register_handlers(socketio, container)
    atexit.register(container.close)
    return app
