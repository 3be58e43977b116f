"""The lowest versions CI installs (``make test-min``) are the ones pyproject.toml allows."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
requirements = pytest.importorskip("packaging.requirements")

ROOT = Path(__file__).resolve().parents[1]
# only torch==2.13.0 installs on the project's machines; the test tools' own
# versions do not touch the package
UNCHECKED = {"torch", "pytest", "pytest-xdist", "numpydoc", "ruff"}


def _lower_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {}
    for line in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = requirements.Requirement(line)
        if req.name in UNCHECKED:
            continue
        lower = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{line!r} needs one '>=' lower bound for make test-min"
        bounds[req.name] = lower[0]
    return bounds


def _pinned():
    pins = {}
    for line in (ROOT / ".ci" / "minimum-versions.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = requirements.Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{line!r} must pin one version"
            pins[req.name] = spec.version
    return pins


def test_minimum_versions_match_the_lower_bounds():
    version = pytest.importorskip("packaging.version").Version
    bounds, pins = _lower_bounds(), _pinned()
    assert set(pins) == set(bounds)
    for name, lower in bounds.items():
        assert version(pins[name]) == version(lower), name
