"""The pure core: plain data in, plain data out; no I/O, no threads, and no rule reads the clock.

Times come in as arguments (`times.utc_now` is only the default that the
layers above inject). tests/unit/test_layers.py holds the core to this.
"""
