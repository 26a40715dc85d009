"""Composite (tenant_id, id) foreign keys on the hot relations: the database itself refuses a row
that points at another tenant's row (PostgreSQL only; the embedded SQLite mode relies on the
application's checks). Row-level security policies are applied by `manage.py migrate` itself,
after every migration (tenants/rls.py), so new tenant tables are covered without a migration."""

from django.db import migrations

# Tables other rows point at: (tenant_id, id) must be unique for a composite key to reference it.
PARENTS = [
    "tenants_user",
    "bots_botprofile",
    "sources_source",
    "sources_document",
    "chat_chat",
    "chat_message",
    "webhooks_webhook",
]
# (child table, foreign key column, parent table)
RELATIONS = [
    ("tenants_apitoken", "user_id", "tenants_user"),
    ("tenants_apitoken", "bot_profile_id", "bots_botprofile"),
    ("sources_source", "bot_profile_id", "bots_botprofile"),
    ("sources_source", "parent_id", "sources_source"),
    ("sources_sourcefile", "source_id", "sources_source"),
    ("sources_document", "source_id", "sources_source"),
    ("sources_chunk", "source_id", "sources_source"),
    ("sources_chunk", "document_id", "sources_document"),
    ("chat_chat", "bot_profile_id", "bots_botprofile"),
    ("chat_message", "chat_id", "chat_chat"),
    ("chat_usageevent", "bot_profile_id", "bots_botprofile"),
    ("chat_usageevent", "chat_id", "chat_chat"),
    ("chat_usageevent", "message_id", "chat_message"),
    ("chat_unansweredquestion", "bot_profile_id", "bots_botprofile"),
    ("chat_unansweredquestion", "chat_id", "chat_chat"),
    ("chat_unansweredquestion", "message_id", "chat_message"),
    ("webhooks_webhookdelivery", "webhook_id", "webhooks_webhook"),
]


def _statements():
    for table in PARENTS:
        yield (
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_tenant_id_id_uniq" UNIQUE ("tenant_id", "id")',
            f'ALTER TABLE "{table}" DROP CONSTRAINT "{table}_tenant_id_id_uniq"',
        )
    for child, column, parent in RELATIONS:
        name = f"{child}_{column}_same_tenant"
        yield (
            f'ALTER TABLE "{child}" ADD CONSTRAINT "{name}" FOREIGN KEY ("tenant_id", "{column}") '
            f'REFERENCES "{parent}" ("tenant_id", "id") DEFERRABLE INITIALLY DEFERRED',
            f'ALTER TABLE "{child}" DROP CONSTRAINT "{name}"',
        )


def add_constraints(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for forward, _ in _statements():
            schema_editor.execute(forward)


def drop_constraints(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for _, backward in reversed(list(_statements())):
            schema_editor.execute(backward)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0003_api_token_dashboard_preview"),
        ("bots", "0002_initial"),
        ("sources", "0002_source_children_event_pending"),
        ("chat", "0001_initial"),
        ("webhooks", "0002_delivery_plural"),
    ]

    operations = [migrations.RunPython(add_constraints, drop_constraints)]
