"""webhook tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_tokens",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("seen_at", storage.models.TZDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "token", name=op.f("pk_webhook_tokens")),
    )
    with op.batch_alter_table("webhook_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_tokens_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_tokens_seen_at"))
    op.drop_table("webhook_tokens")
