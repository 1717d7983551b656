"""Indexes for the live list's keyset pages: one per sort column, each ending in the miner id, so a page
at any depth is an index range scan from the cursor ``(site, column, miner) > (…)``.

Plain SQL (valid on PostgreSQL and SQLite) with no model state: the lead's ``LiveStatus.Meta.indexes``
stay as they are. On PostgreSQL, ``live_site_status`` (site, status) is a prefix of ``live_q_status`` and
could be dropped once the Meta lists these instead."""

from django.db import migrations

INDEXES = {
    "live_q_status": "site_id, status, miner_id",
    "live_q_temp": "site_id, temp_chip_max_c, miner_id",
    "live_q_hashrate": "site_id, hashrate_ghs, miner_id",
    "live_q_last_seen": "site_id, last_seen, miner_id",
}


class Migration(migrations.Migration):
    # Written against 0004; placed after the partitioning migration so the graph has one leaf.
    dependencies = [("telemetry", "0005_partition_raw_history")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON telemetry_live ({columns})",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, columns in INDEXES.items()
    ]
