"""Admin of invoices, lines, statements and credit notes (owner: invoicing)."""
