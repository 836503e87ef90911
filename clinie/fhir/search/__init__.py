"""FHIR search: the parameter registry (index and query) and the date helper. See ``registry``."""

from clinie.fhir.search.dates import DATE_PREFIXES, DateRange, date_range, parse_date
from clinie.fhir.search.registry import (
    ICD10CM_HIERARCHY,
    RESOURCE_TYPES,
    SEARCH_COLUMNS,
    SEARCH_PARAMETERS,
    Hierarchy,
    SearchParameter,
    index_columns,
    sort_parameters,
)

__all__ = [
    "DATE_PREFIXES",
    "ICD10CM_HIERARCHY",
    "RESOURCE_TYPES",
    "SEARCH_COLUMNS",
    "SEARCH_PARAMETERS",
    "DateRange",
    "Hierarchy",
    "SearchParameter",
    "date_range",
    "index_columns",
    "parse_date",
    "sort_parameters",
]
