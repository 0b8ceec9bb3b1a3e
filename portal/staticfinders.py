"""Serve plotly.js from the installed plotly package, so it always matches it.

The figures are built server-side with the plotly Python package; the browser
library must be the exact build that package was made for. Only the one file
is exposed (as ``vendor/plotly.min.js``), not the package's data sets.
"""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"
EXPOSED = {"vendor/plotly.min.js": "plotly.min.js"}


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(PACKAGE_DATA))
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        name = EXPOSED.get(path)
        if name is None:
            return [] if find_all else None
        found = str(PACKAGE_DATA / name)
        return [found] if find_all else found

    def list(self, ignore_patterns):
        for name in EXPOSED.values():
            yield name, self.storage
