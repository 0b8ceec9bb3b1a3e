from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("departments", "0007_evaluation_confirmed_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluation",
            name="reason_phrase",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
