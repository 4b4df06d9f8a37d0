"""`livetrain serve`: the command that starts the server.

Monkey-patching for eventlet/gevent happens here and only here, before the app is imported.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="livetrain", description="Self-hosted real-time training server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=os.environ.get("LIVETRAIN_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("LIVETRAIN_PORT", "8000")))
    serve.add_argument("--home", default=os.environ.get("LIVETRAIN_HOME") or os.getcwd(),
                       help="folder for the database, models/ and data/ (default: the current folder)")
    serve.add_argument("--async-mode", choices=["eventlet", "threading", "gevent"],
                       default=os.environ.get("LIVETRAIN_ASYNC_MODE") or "eventlet")
    serve.add_argument("--log-level", default=os.environ.get("LIVETRAIN_LOG_LEVEL", "INFO"))
    return parser


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from livetrain.concurrency import monkey_patch

    monkey_patch(args.async_mode)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import torch  # noqa: F401  (loaded before listening, so the first request does not wait for it)

    from livetrain.app import create_app

    app = create_app({"home": args.home}, async_mode=args.async_mode)
    container = app.extensions["livetrain"]
    container.runner.warm_up()
    socketio = app.extensions["socketio"]
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(f"livetrain serving on http://{args.host}:{args.port} (home {container.settings.home}, "
          f"{args.async_mode})", flush=True)
    try:
        socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True, log_output=False)
    except KeyboardInterrupt:
        pass
    finally:
        container.close()
    return 0


def _stop_on_sigterm(signum, frame) -> None:
    # `docker stop` and service managers send SIGTERM: shut down as on Ctrl-C, so running
    # runs are marked interrupted (resumable) and worker processes are stopped.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `livetrain` command."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
