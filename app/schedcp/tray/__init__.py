"""The SchedCP tray (PySide6): a thin layer over ``schedcp.desktop``, which holds every piece
of desktop logic that is not drawing. Qt-free helpers (wording, history records, the
optimization run) live in their own modules so they can be tested and reused without Qt."""
