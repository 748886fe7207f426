"""LwM2M 1.1 for the product: ``core`` holds objects, paths, codecs and registration values with no
transport; ``server`` and ``transport`` (the one place that imports aiocoap) build on it."""
