"""
Give each username to one account: store its canonical spelling in a unique column.

Accounts whose names already share a canonical spelling ("émile" and "Émile"
on SQLite, "ross" and "roß" anywhere) keep the name on the oldest of them (the
lowest id); each later one is renamed "<name>-<id>", and printed, so that an
administrator can tell its owner. Names that mix scripts are left as they are:
the forms refuse them from now on, the migration does not rename them.
"""

import django.contrib.auth.validators
from django.db import migrations, models

import accounts.models
import accounts.usernames
from accounts.usernames import canonical

BATCH = 1000


def fill_username_canonical(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    taken = set()
    batch = []
    for user in User.objects.order_by("pk").only("pk", "username").iterator(BATCH):
        name = canonical(user.username)
        if name in taken:
            old = user.username
            user.username = _free_name(User, old, user.pk, taken)
            name = canonical(user.username)
            print(f"  user {user.pk}: renamed to {user.username!r}, as {old!r} is an older account's name")
        taken.add(name)
        user.username_canonical = name
        batch.append(user)
        if len(batch) == BATCH:
            User.objects.bulk_update(batch, ["username", "username_canonical"])
            batch = []
    User.objects.bulk_update(batch, ["username", "username_canonical"])


def _free_name(User, username, pk, taken):
    suffix = f"-{pk}"
    while True:
        name = username[: 150 - len(suffix)] + suffix
        if canonical(name) not in taken and not User.objects.filter(username=name).exists():
            return name
        suffix += f"-{pk}"


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_user_email_canonical"),
    ]

    operations = [
        migrations.AlterModelManagers(
            name="user",
            managers=[
                ("objects", accounts.models.UserManager()),
            ],
        ),
        migrations.AlterField(
            model_name="user",
            name="username",
            field=models.CharField(
                error_messages={"unique": "A user with that username already exists."},
                help_text="Required. 150 characters or fewer. Letters of one script, digits and @/./+/-/_ only.",
                max_length=150,
                unique=True,
                validators=[
                    django.contrib.auth.validators.UnicodeUsernameValidator(),
                    accounts.usernames.validate_single_script,
                ],
                verbose_name="username",
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="username_canonical",
            field=models.TextField(editable=False, null=True),
        ),
        migrations.RunPython(fill_username_canonical, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="user",
            name="username_canonical",
            field=models.TextField(editable=False, unique=True),
        ),
    ]
