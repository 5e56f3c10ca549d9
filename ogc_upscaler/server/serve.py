"""``ogc-upscaler serve``: write pygeoapi's config, then serve it with Flask's development server.

Production runs the same app under gunicorn (see the README); :func:`gunicorn_command` prints it.
"""

from __future__ import annotations

import os
import shlex

from ogc_upscaler.server.settings import ServerSettings, prepare


def gunicorn_command(settings: ServerSettings, env: dict[str, str], workers: int = 2) -> str:
    """The production command for the prepared state."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return (
        f"{exports} gunicorn --workers {workers} --threads 4 --bind {settings.host}:{settings.port} "
        "ogc_upscaler.server.app:APP"
    )


def serve(settings: ServerSettings) -> None:
    """Prepare and serve until interrupted (development server: one process, threads)."""
    os.environ.update(prepare(settings))
    from ogc_upscaler.server.app import APP  # reads the config written just above

    APP.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False, debug=False)
