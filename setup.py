"""Packages of the wheel: talker's, plus the Hydra config tree and the table specifications.

In the checkout the config tree (configs/) and the table specifications (experiments/) sit next to
talker/; the wheel maps them into the package as talker/configs and talker/experiments, so an
installed talker finds them through the package (talker.config.shipped_dir) from any directory.
Everything else about the project is in pyproject.toml.
"""

from setuptools import find_namespace_packages, find_packages, setup

SHIPPED = {"talker.configs": "configs", "talker.experiments": "experiments"}
# Every folder of the shipped trees is a (data-only) package of its own, as setuptools expects.
DATA_PACKAGES = [
    name
    for package, folder in SHIPPED.items()
    for name in (package, *(f"{package}.{sub}" for sub in find_namespace_packages(where=folder)))
]

setup(
    packages=[*find_packages(include=["talker", "talker.*"]), *DATA_PACKAGES],
    package_dir=SHIPPED,
    package_data={**{name: ["*.yaml"] for name in DATA_PACKAGES}, "talker.study": ["web/*"]},  # the rating page
)
