"""Settings of the benchmark server: the project's settings plus the framework-ceiling route."""

import warnings

from ticketing.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# The API serves no static files; the bench does not run collectstatic into the project.
warnings.filterwarnings("ignore", message=r"No directory at: .*staticfiles")
