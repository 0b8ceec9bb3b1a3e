# Code scan adoption: a finding silenced by a `# kaizen: ignore[...] -- reason` comment in
# the target's code is kept, with the status "suppressed" and the comment's reason.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('optimizations', '0010_baselines'),
    ]

    operations = [
        migrations.AlterField(
            model_name='finding',
            name='status',
            field=models.CharField(choices=[('open', 'Open'), ('accepted', 'Accepted'), ('fixed', 'Fixed'), ('wont_fix', "Won't fix"), ('false_positive', 'False positive'), ('suppressed', 'Suppressed in code')], default='open', max_length=20),
        ),
    ]
