"""
Give each e-mail address to one account: store its canonical spelling in a unique column.

Accounts that already share an address in some spelling keep it on the oldest of
them (the lowest id, which signed up first); the others lose it, so that no one
who registered someone else's address later can take the reset mail. The ids of
the accounts whose address was cleared are printed, never the addresses.
"""

from django.db import migrations, models

from accounts.emails import canonical

BATCH = 1000


def fill_email_canonical(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    taken = set()
    batch = []
    for user in User.objects.exclude(email="").order_by("pk").only("pk", "email").iterator(BATCH):
        address = canonical(user.email)
        if address is not None and address in taken:
            user.email, user.email_canonical = "", None
            print(f"  user {user.pk}: e-mail address cleared, an older account uses it")
        else:
            taken.add(address)
            user.email_canonical = address
        batch.append(user)
        if len(batch) == BATCH:
            User.objects.bulk_update(batch, ["email", "email_canonical"])
            batch = []
    User.objects.bulk_update(batch, ["email", "email_canonical"])


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_canonical",
            field=models.TextField(editable=False, null=True),
        ),
        migrations.RunPython(fill_email_canonical, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="user",
            name="email_canonical",
            field=models.TextField(editable=False, null=True, unique=True),
        ),
    ]
