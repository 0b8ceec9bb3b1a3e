from functools import lru_cache

from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    database_url: str = "postgresql+asyncpg://app@localhost:6432/app"
    debug: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_uncached() -> Settings:
    return Settings()  # expect: FSA303
