"""Package discovery only (everything else is in pyproject.toml): the web panel's files live
in the top-level web/ directory and are installed as the package gateway.web."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["gateway", "gateway.*"]), "gateway.web"],
    package_dir={"gateway.web": "web"},
)
