"""Starting the dashboard: ``liushou-geo serve`` (what ``make run`` uses).

Streamlit treats an app with a ``pages/`` folder as a "version 1"
multipage app until the first session calls ``st.navigation``: in that first
session, a URL naming a file in ``pages/`` runs that file alone, without
``app.py`` (no page config, no shared setup). Setting the flag before the
server starts turns that mode off for every session.
"""

from __future__ import annotations

import sys

from .settings import REPO_ROOT

APP = REPO_ROOT / "app.py"


def serve(address: str = "127.0.0.1", port: int = 8501, extra: list[str] | None = None) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as stcli

    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(APP), "--server.address", address, "--server.port", str(port),
                "--server.headless", "true", "--browser.gatherUsageStats", "false", *(extra or [])]
    stcli.main()


if __name__ == "__main__":
    serve(*(sys.argv[1:2] or ["127.0.0.1"]), *(map(int, sys.argv[2:3]) if len(sys.argv) > 2 else []))
