import os

os.environ.setdefault("KAIZEN_TESTING", "1")
