"""livetrain: a self-hosted, real-time training server."""

__version__ = "0.1.0"
