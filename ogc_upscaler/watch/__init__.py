"""The watch page: a campaign's tiles on a map, coloured by state, live, with its failures and actions.

:mod:`~ogc_upscaler.watch.view` reads a store (never writes it); :mod:`~ogc_upscaler.watch.app` answers
the page's requests, as a WSGI application the CLI serves (``ogc-upscaler watch``) and the endpoint
mounts for each ``upscale`` job; actions are requests to the manager (:mod:`ogc_upscaler.control`).
"""
