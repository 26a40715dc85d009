from __future__ import annotations

import factory

from bots.models import BotProfile
from tenants.tests.factories import TenantFactory, TenantOwnedFactory


class BotProfileFactory(TenantOwnedFactory):
    class Meta:
        model = BotProfile

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Bot {n}")
    description = "A test bot."
    model = "local/extractive"
    embedding_model = "local/minilm"
