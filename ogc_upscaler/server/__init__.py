"""The OGC API – Processes endpoint: pygeoapi with our processors and job manager.

- :mod:`~ogc_upscaler.server.settings`: what the endpoint serves; writes pygeoapi's config;
- :mod:`~ogc_upscaler.server.describe`: process descriptions from CWL, and ``upscale``'s;
- :mod:`~ogc_upscaler.server.inputs`: checking execute requests (400 before anything runs);
- :mod:`~ogc_upscaler.server.execute`: reading execute bodies and ``Prefer`` headers;
- :mod:`~ogc_upscaler.server.campaign_size`: bounds of a campaign's tile count, for ``max_tiles``;
- :mod:`~ogc_upscaler.server.processes`: the processors (a package, a whole campaign);
- :mod:`~ogc_upscaler.server.jobs`: the endpoint's jobs in SQLite;
- :mod:`~ogc_upscaler.server.worker`: the detached process that runs one job;
- :mod:`~ogc_upscaler.server.manager`: the pygeoapi job manager tying them together;
- :mod:`~ogc_upscaler.server.job_management`: Part 4's create-then-start routes, and the job views;
- :mod:`~ogc_upscaler.server.app`: the WSGI app (pygeoapi + our job routes + job outputs);
- :mod:`~ogc_upscaler.server.serve`: ``ogc-upscaler serve``.

Needs the ``server`` extra (pygeoapi).
"""
