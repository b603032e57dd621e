from django.apps import AppConfig


class ExampleConfig(AppConfig):
    name = "example"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from example import checks  # noqa: F401  registers example.E001
