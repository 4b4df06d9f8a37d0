"""Pure machine learning: network specs, model building, trainers. No Flask, no Socket.IO."""
