"""``python -m services.fhir_api``: serve the API with settings from CLINIE_* environment variables."""

from services.fhir_api.app import run

if __name__ == "__main__":
    run()
