"""Connection strings: a local developer default, and a real host with its password."""

import os

LOCAL_URL = os.environ.get("DATABASE_URL", "postgresql://dev:devpass@localhost:5432/app")  # ok
REPLICA = os.environ.get("REPLICA", "postgresql://app:Rw9-rep@pg.prod/app")  # expect: FSA405
