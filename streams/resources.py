"""The files the package ships (package data), found through ``importlib.resources``.

Every path into the installed package is named here, so a wheel installed anywhere (``pip
install``, ``pipx``, the Docker image) finds its schemas, default rules, dashboard assets and the
broker's Maven coordinates, and nothing reads a path relative to a source checkout. Wheels are
installed unpacked, so each resource is a real file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _package_dir(package: str) -> Path:
    return Path(str(files(package)))


#: Avro schemas (``*.avsc``) and the older versions still read (``history/``)
SCHEMAS = _package_dir("streams") / "schemas"
#: the default alert rules
DEFAULT_RULES = _package_dir("alerts") / "rules.yaml"
#: Maven coordinates of the Apache Kafka broker that ``disposal-watch kafka start`` runs
BROKER_POM = _package_dir("streams") / "broker" / "pom.xml"
#: the dashboard's script and style sheet, served at ``/static/``
DASHBOARD_STATIC = _package_dir("streams") / "dashboard" / "static"
#: the OpenAPI 3.1 document of the worker's HTTP endpoints, served at ``/api/openapi.json``
OPENAPI = _package_dir("streams") / "http" / "openapi.json"
