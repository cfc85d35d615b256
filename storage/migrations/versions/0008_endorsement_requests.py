"""endorsement requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Issue 16: endorsement requests wait here for their organization's next digest.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "endorsement_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("requester", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("created_at", storage.models.TZDateTime(timezone=True), nullable=False),
        sa.Column("digest_at", storage.models.TZDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_endorsement_requests_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_endorsement_requests_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endorsement_requests")),
    )
    with op.batch_alter_table("endorsement_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_endorsement_requests_pending", ["organization_id", "digest_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("endorsement_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_endorsement_requests_pending")

    op.drop_table("endorsement_requests")
