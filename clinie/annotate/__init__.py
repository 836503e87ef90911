"""``clinie annotate``: notes in (text, folders, stdin, interchange JSONL, FHIR), annotations out (JSONL, FHIR, HTML).

``sources`` reads the inputs, ``bundle`` builds the FHIR transaction Bundle the service would store, ``html``
renders annotated notes as a self-contained page. The command itself lives in ``services.cli.main``.
"""
