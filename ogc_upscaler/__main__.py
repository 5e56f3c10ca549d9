"""``python -m ogc_upscaler``: the same as the ``ogc-upscaler`` command."""

from ogc_upscaler.cli import main

main()
