"""Entry: wiring of the object graph, process start-up and shutdown, the HTTP server and the
scheduler's lifecycle."""
