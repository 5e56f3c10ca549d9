"""The public surface is what __all__ says, and nothing else."""

from __future__ import annotations

import ogc_upscaler


def test_all_is_sorted_and_every_name_exists() -> None:
    assert sorted(ogc_upscaler.__all__, key=str.lower) == sorted(ogc_upscaler.__all__, key=str.lower)
    for name in ogc_upscaler.__all__:
        assert hasattr(ogc_upscaler, name), name


def test_public_names_are_documented() -> None:
    for name in ogc_upscaler.__all__:
        assert getattr(ogc_upscaler, name).__doc__, name


def test_every_error_derives_from_the_root() -> None:
    errors = [
        getattr(ogc_upscaler, n)
        for n in ogc_upscaler.__all__
        if n.endswith(("Error", "Locked", "Conflict")) or n.startswith("Invalid")
    ]
    assert all(issubclass(e, ogc_upscaler.UpscalerError) for e in errors)
