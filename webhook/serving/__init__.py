"""Serving HTTPS: gunicorn's master, the event-loop workers, the wire, TLS, the dispatch table.

A request goes: `server` (gunicorn's master, two ports) -> `worker` -> `front`
(connections, timeouts, bounds; `httpwire` reads and writes the bytes) ->
`dispatch` (port + method + path -> a route) -> on the loop, or in `pool`'s
admission threads: the admission handler, or `app` (Flask: the admin pages).
"""
