"""FHIR R4 query API over the resources clinie stores (issue 4): read, search, bulk export, SMART scopes.

``create_app(ApiSettings(...))`` builds the FastAPI app; ``python -m services.fhir_api`` serves it.
"""

from services.fhir_api.app import create_app, run
from services.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "run"]
