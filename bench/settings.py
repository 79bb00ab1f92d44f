"""Settings of the benchmark server: the project's settings plus the framework-ceiling route."""

import warnings

from ticketing.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# DRF's plain-text token table, for a commit from before hashed API tokens: `bench/ab.py --base`
# serves one against the database this tree migrates, and `seed.buyers` writes each buyer's key
# to this table as well as to the project's (digests). The project itself no longer uses it.
INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]  # noqa: F405

# The API serves no static files; the bench does not run collectstatic into the project.
warnings.filterwarnings("ignore", message=r"No directory at: .*staticfiles")
