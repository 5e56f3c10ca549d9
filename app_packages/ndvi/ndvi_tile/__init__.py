"""NDVI composite of one pixel-aligned tile, from STAC items with red and NIR COG assets."""
