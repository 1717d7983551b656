"""The site-local collector: polls miners, spools samples in SQLite, pushes them to the server over HTTP.

Run ``python -m edge.collector --config site.toml``; see edge/README.md ("Collector"). Imports nothing from
the Django apps: the server is reached through its edge API only."""

VERSION = "0.1.0"
