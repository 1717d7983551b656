"""Statement rows, lean for 3.1 M rows a month: the invoice foreign key keeps no index of its own (the primary key
leads with it) and no database constraint (the deferred per-row checks cost a third of the build). On PostgreSQL the
issued-invoice guard becomes one check per statement over a transition table instead of one per row: rebuilding a
draft deletes its 31,000 rows, which ran the row trigger 31,000 times."""

import django.db.models.deletion
from django.db import migrations, models

CHECK = """
CREATE OR REPLACE FUNCTION billing_refuse_issued_rows() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM old_rows o JOIN billing_invoice i ON i.id = o.invoice_id
             WHERE i.status IN ('issued', 'partially_paid', 'paid', 'overdue')) THEN
    RAISE EXCEPTION 'an issued invoice''s lines and statement rows cannot change'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""
TABLES = ("billing_invoiceline", "billing_statementrow")
PER_STATEMENT = (
    CHECK
    + "".join(
        f"""
DROP TRIGGER IF EXISTS billing_{table.split("_", 1)[1]}_immutable ON {table};
CREATE TRIGGER billing_{table.split("_", 1)[1]}_no_update AFTER UPDATE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_issued_rows();
CREATE TRIGGER billing_{table.split("_", 1)[1]}_no_delete AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_issued_rows();
"""
        for table in TABLES
    )
    + "DROP FUNCTION IF EXISTS billing_refuse_issued_child();"
)

PER_ROW = (
    "".join(
        f"""
DROP TRIGGER IF EXISTS billing_{table.split("_", 1)[1]}_no_update ON {table};
DROP TRIGGER IF EXISTS billing_{table.split("_", 1)[1]}_no_delete ON {table};
"""
        for table in TABLES
    )
    + "DROP FUNCTION IF EXISTS billing_refuse_issued_rows();"
)


def _on_postgresql(sql, *, then=None):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:  # no parameters: '%' and quotes stay as written
                cursor.execute(sql)

    return run


def _restore_row_triggers(apps, schema_editor):
    from importlib import import_module

    earlier = import_module("hashinsight.billing.migrations.0002_issued_invoice_immutable_trigger")
    _on_postgresql(PER_ROW)(apps, schema_editor)
    _on_postgresql(earlier.CREATE)(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_schedules")]

    operations = [
        migrations.AlterField(
            model_name="statementrow",
            name="invoice",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="statement_rows",
                to="billing.invoice",
            ),
        ),
        migrations.RunPython(_on_postgresql(PER_STATEMENT), _restore_row_triggers),
    ]
