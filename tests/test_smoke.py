def test_settings_load(settings):
    assert settings.CELERY_TASK_SERIALIZER == "json"
