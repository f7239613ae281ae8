"""Package discovery only (everything else is in pyproject.toml): the web panel's files live
in the top-level web/ directory and are installed as the package gateway.web."""

from setuptools import find_namespace_packages, setup

setup(
    # Namespace discovery: Alembic's versions/ directory has no __init__.py, and setuptools
    # warns at every install about a directory that find_packages() leaves out.
    packages=[
        *find_namespace_packages(include=["gateway", "gateway.*"], exclude=["*__pycache__"]),
        "gateway.web",
    ],
    package_dir={"gateway.web": "web"},
)
