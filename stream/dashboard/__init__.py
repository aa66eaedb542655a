"""The live page on the worker: ``GET /`` (pipeline, reputation, alerts, model health) and
``GET /products/<id>``, for on-call engineers and category managers.

``queries`` are the bounded ClickHouse reads, ``assemble`` builds each JSON body from them,
``pipeline`` turns the worker's metrics into rates and latency quantiles, ``pages`` holds the
routes, and ``install`` wires it all into the worker. ``static/`` is plain HTML, CSS and
JavaScript (no build step) plus the vendored chart library (uPlot, ``static/vendor``).
"""
