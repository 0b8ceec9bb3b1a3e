# Reserved in the migration chain; its operations are written by the work it is named after.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('optimizations', '0009_verdicts'),
    ]

    operations = []
