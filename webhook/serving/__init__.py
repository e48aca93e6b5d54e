"""Serving HTTPS: gunicorn's master, the event-loop workers, the wire, TLS and the Flask app."""
