"""On PostgreSQL the database itself refuses to change or delete the lines and statement rows of an issued
invoice: the model guard (hashinsight.billing.issuing) cannot see QuerySet.update() or raw SQL. SQLite relies on
the guard and the service's row lock."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION billing_refuse_issued_child() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM billing_invoice WHERE id = OLD.invoice_id
             AND status IN ('issued', 'partially_paid', 'paid', 'overdue')) THEN
    RAISE EXCEPTION 'invoice % is issued: its lines and statement rows cannot change', OLD.invoice_id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN COALESCE(NEW, OLD);
END $$ LANGUAGE plpgsql;
CREATE TRIGGER billing_invoiceline_immutable BEFORE UPDATE OR DELETE ON billing_invoiceline
  FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_child();
CREATE TRIGGER billing_statementrow_immutable BEFORE UPDATE OR DELETE ON billing_statementrow
  FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_child();
"""
DROP = """
DROP TRIGGER IF EXISTS billing_statementrow_immutable ON billing_statementrow;
DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_refuse_issued_child();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:  # no parameters: the '%' in RAISE stays as it is
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
