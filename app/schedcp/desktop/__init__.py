"""The tray's desktop services without Qt: what an application is, which one is in front,
notifications, settings and the API key, per-app profiles, and the session tying them to the
helper. The Qt layer (``schedcp.tray``) only draws; everything here is testable headless and
calls back from its own threads."""
