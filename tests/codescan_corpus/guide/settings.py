"""Settings read from the environment."""

import os


class Settings:
    database_url = os.environ.get("DATABASE_URL", "postgresql+asyncpg://localhost/shop")
    debug = os.environ.get("DEBUG") == "1"
    debug_pool = os.environ.get("DEBUG_POOL") == "1"


settings = Settings()
