"""Admin for the real-time responder and its decisions."""
