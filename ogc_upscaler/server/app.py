"""The WSGI application: pygeoapi's Flask app, plus the job outputs it links to and Part 4's job management.

``gunicorn ogc_upscaler.server.app:APP`` with ``PYGEOAPI_CONFIG`` and ``PYGEOAPI_OPENAPI`` set
(``ogc-upscaler serve --prepare-only`` writes both and prints the command); ``ogc-upscaler serve``
runs this same ``APP``. Results link COGs and STAC catalogs under ``/outputs/<job id>/...``: files
of the job's ``outputs`` folder only, served with Flask's ``send_from_directory`` (which refuses
any path leaving that folder). :mod:`~ogc_upscaler.server.job_management` adds ``POST /jobs``,
``POST /jobs/{id}/results`` and ``GET /jobs/{id}/definition`` and redoes pygeoapi's job views;
:mod:`~ogc_upscaler.server.watch` serves each ``upscale`` job's watch page at ``/watch/<job id>/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, abort, send_from_directory
from pygeoapi.flask_app import API_RULES, APP, CONFIG, api_

from ogc_upscaler.server import job_management, watch
from ogc_upscaler.server.describe import COG

JOB_ID = re.compile(r"^[0-9a-f-]{36}$")
STATE = Path(CONFIG["server"]["manager"]["connection"]).parent

OUTPUTS = Blueprint("ogc_upscaler_outputs", __name__)


@OUTPUTS.route("/outputs/<job_id>/<path:path>")
def output(job_id: str, path: str):
    """A file of a job's outputs."""
    if not JOB_ID.match(job_id):
        abort(404)
    folder = STATE / "jobs" / job_id / "outputs"
    mimetype = COG if path.lower().endswith((".tif", ".tiff")) else None
    return send_from_directory(folder, path, mimetype=mimetype, conditional=True)


APP.register_blueprint(OUTPUTS)
job_management.install(APP, api_, API_RULES.get_url_prefix("flask"))
watch.install(APP, STATE)

__all__ = ["APP"]
