"""End-to-end tests: the real `livetrain serve` (eventlet) in a subprocess, driven over HTTP and Socket.IO."""
