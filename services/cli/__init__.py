"""The ``clinie`` command line: starts the services and drives the library (the library never imports it)."""
