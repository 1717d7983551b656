"""The hosting business's money records (modules FINANCE and WEB3): invoices built from the ``daily`` telemetry
layer and a contract's tariff, their per-miner-day reconciliation statements, credit notes, payments, sales
commissions, force-majeure windows (SLA exclusions), monthly SLA certificates, and the daily Merkle roots that
make issued statements verifiable.

Money is ``Decimal`` with the row's ``currency``, never float; amounts are rounded half-up to the cent
(``hashinsight.billing.money``). An issued invoice never changes: corrections are credit notes."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from sites.models import CURRENCIES

MONEY = {"max_digits": 16, "decimal_places": 2}


class ForceMajeureWindow(models.Model):
    """A window the operator declares force majeure at a site (storm, grid emergency): downtime inside it is
    excluded from the SLA. Entered with a reason; the entry is audited."""

    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="force_majeure_windows")
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    reason = models.CharField(_("reason"), max_length=500)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("force-majeure window")
        verbose_name_plural = _("force-majeure windows")
        ordering = ["-start"]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="force_majeure_end_after_start"),
            models.CheckConstraint(condition=~models.Q(reason=""), name="force_majeure_has_reason"),
        ]

    def __str__(self):
        return f"{self.site_id}: {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M}"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    PARTIALLY_PAID = "partially_paid", _("Partially paid")
    PAID = "paid", _("Paid")
    OVERDUE = "overdue", _("Overdue")
    VOID = "void", _("Void")  # a draft thrown away; an issued invoice is never voided, it gets a credit note


# Statuses whose figures are frozen (the hash seals them).
ISSUED_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID, InvoiceStatus.OVERDUE)


class Invoice(models.Model):
    """One hosting client's invoice for one contract and one billing period (a calendar month, or its part from a
    mid-month contract start). Built as a draft by the monthly job; issuing numbers it, freezes its lines and
    statement, and records ``content_sha256`` in the audit chain."""

    Status = InvoiceStatus

    number = models.CharField(_("invoice number"), max_length=40, unique=True, null=True, blank=True)
    customer = models.ForeignKey("sites.Customer", on_delete=models.PROTECT, related_name="invoices")
    contract = models.ForeignKey("sites.HostingContract", on_delete=models.PROTECT, related_name="invoices")
    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="invoices")
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))  # inclusive
    currency = models.CharField(_("currency"), max_length=4, choices=CURRENCIES, default="USD")
    status = models.CharField(_("status"), max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    subtotal = models.DecimalField(_("charges"), **MONEY, default=Decimal("0"))
    credits = models.DecimalField(_("credits"), **MONEY, default=Decimal("0"))  # SLA + curtailment, positive
    prior_balance = models.DecimalField(_("prior balance"), **MONEY, default=Decimal("0"))
    deposit_applied = models.DecimalField(_("deposit applied"), **MONEY, default=Decimal("0"))
    total = models.DecimalField(_("total due"), **MONEY, default=Decimal("0"))
    amount_paid = models.DecimalField(_("paid"), **MONEY, default=Decimal("0"))
    amount_credited = models.DecimalField(_("credit notes"), **MONEY, default=Decimal("0"))
    # Figures behind the lines, for the statement header and the SLA certificate.
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=16, decimal_places=3, default=Decimal("0"))
    miner_count = models.PositiveIntegerField(_("miners"), default=0)
    uptime_pct = models.DecimalField(_("uptime (%)"), max_digits=6, decimal_places=3, null=True, blank=True)
    sla_uptime_pct = models.DecimalField(
        _("SLA uptime (%)"), max_digits=6, decimal_places=3, null=True, blank=True
    )  # excluded downtime removed
    issue_date = models.DateField(_("issued"), null=True, blank=True)
    due_date = models.DateField(_("due"), null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    content_sha256 = models.CharField(_("content SHA-256"), max_length=64, blank=True)
    statement_sha256 = models.CharField(_("statement SHA-256"), max_length=64, blank=True)
    audit_event_id = models.CharField(_("audit event"), max_length=40, blank=True)  # AuditEvent.public_id
    # Crypto payment addresses given to this invoice (from the operator's pool, hashinsight.billing.payments).
    btc_address = models.CharField(_("BTC address"), max_length=100, blank=True)
    usdt_address = models.CharField(_("USDT address"), max_length=100, blank=True)
    last_reminder_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    generated_at = models.DateTimeField(_("generated"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-period_start", "customer_id"]
        indexes = [
            models.Index(fields=["customer", "status"], name="invoice_customer_status"),
            models.Index(fields=["status", "due_date"], name="invoice_status_due"),
            models.Index(fields=["site", "period_start"], name="invoice_site_period"),
        ]
        constraints = [
            # One live invoice per contract and period: the monthly job re-run replaces the draft, never adds one.
            models.UniqueConstraint(
                fields=["contract", "period_start"],
                condition=~models.Q(status=InvoiceStatus.VOID),
                name="invoice_one_per_contract_period",
            ),
            models.CheckConstraint(condition=models.Q(period_end__gte=models.F("period_start")), name="invoice_period"),
        ]

    def __str__(self):
        return self.number or f"draft {self.pk}"

    @property
    def balance_due(self) -> Decimal:
        return self.total - self.amount_paid - self.amount_credited

    @property
    def is_issued(self) -> bool:
        return self.status in ISSUED_STATUSES


class InvoiceLine(models.Model):
    """One line of an invoice. ``kind`` says where it came from; its miner-days are the statement rows whose
    amounts in the same column sum to it (``hashinsight.billing.statements``)."""

    class Kind(models.TextChoices):
        ENERGY = "energy", _("Energy")
        FIXED_FEE = "fixed_fee", _("Fixed fee per miner")
        REVENUE_SHARE = "revenue_share", _("Revenue share")
        SLA_CREDIT = "sla_credit", _("SLA credit")
        CURTAILMENT_CREDIT = "curtailment_credit", _("Curtailment credit")
        DEPOSIT = "deposit", _("Deposit")
        PRIOR_BALANCE = "prior_balance", _("Prior balance")
        ADJUSTMENT = "adjustment", _("Adjustment")

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    description = models.CharField(_("description"), max_length=300)
    quantity = models.DecimalField(_("quantity"), max_digits=18, decimal_places=4)
    unit = models.CharField(_("unit"), max_length=20)  # kWh, miner-month, miner-hour, %, USD
    unit_price = models.DecimalField(_("unit price"), max_digits=16, decimal_places=6)
    amount = models.DecimalField(_("amount"), **MONEY)  # credits are negative

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_unique")]

    def __str__(self):
        return f"{self.invoice_id}#{self.position} {self.kind}"


class StatementRow(models.Model):
    """The reconciliation statement: one row per miner per day of an invoice, frozen when the invoice is built and
    sealed by ``Invoice.statement_sha256`` when it is issued. ``source`` links each figure to where it came from:
    the ``telemetry_daily`` row (miner, day) and the command ids that explain downtime and curtailment."""

    pk = models.CompositePrimaryKey("invoice_id", "miner_id", "day")
    # No index and no database constraint: the primary key (invoice, miner, day) already leads with the invoice, and
    # a month at 100,000 miners inserts 3.1 M rows whose deferred foreign-key checks cost a third of the build; the
    # rows are only written by the invoicing service, in the transaction that holds the invoice's row.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="statement_rows", db_index=False, db_constraint=False
    )
    miner = models.ForeignKey(
        "miners.Miner", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    day = models.DateField(_("day"))
    serial = models.CharField(_("serial number"), max_length=64)
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=12, decimal_places=3)
    uptime_pct = models.DecimalField(_("uptime (%)"), max_digits=6, decimal_places=3)
    avg_hashrate_ths = models.DecimalField(
        _("average hashrate (TH/s)"), max_digits=12, decimal_places=3, null=True, blank=True
    )
    downtime_operator_h = models.DecimalField(_("operator downtime (h)"), max_digits=6, decimal_places=3, default=0)
    downtime_client_h = models.DecimalField(_("client downtime (h)"), max_digits=6, decimal_places=3, default=0)
    downtime_excluded_h = models.DecimalField(_("excluded downtime (h)"), max_digits=6, decimal_places=3, default=0)
    curtailed_h = models.DecimalField(
        _("curtailed at operator's request (h)"), max_digits=6, decimal_places=3, default=0
    )
    downtime_reasons = models.CharField(_("downtime reasons"), max_length=200, blank=True)  # codes, comma-separated
    energy_amount = models.DecimalField(_("energy charge"), max_digits=14, decimal_places=6, default=0)  # unrounded
    command_ids = models.JSONField(_("commands"), default=list, blank=True)
    reported = models.BooleanField(_("telemetry reported"), default=True)  # False: no daily row; all downtime

    class Meta:
        verbose_name = _("statement row")
        verbose_name_plural = _("statement rows")
        ordering = ["invoice", "day", "serial"]

    def __str__(self):
        return f"{self.serial} @ {self.day}"


class CreditNote(models.Model):
    """A correction to an issued invoice: numbered, immutable, hashed into the audit chain like the invoice."""

    number = models.CharField(_("credit note number"), max_length=40, unique=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    amount = models.DecimalField(_("amount"), **MONEY)  # positive: what the client no longer owes
    reason = models.CharField(_("reason"), max_length=500)
    issued_at = models.DateTimeField(_("issued"))
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    content_sha256 = models.CharField(_("content SHA-256"), max_length=64)
    audit_event_id = models.CharField(_("audit event"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("credit note")
        verbose_name_plural = _("credit notes")
        ordering = ["-issued_at"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="credit_note_amount_positive")]

    def __str__(self):
        return self.number


class PaymentMethod(models.TextChoices):
    BANK = "bank", _("Bank transfer")
    BTC = "btc", _("Bitcoin")
    USDT = "usdt", _("USDT")


class Payment(models.Model):
    """Money received against an invoice. Crypto payments carry the transaction id; the chain adapter
    (``hashinsight.billing.chain``) moves them from pending to confirmed; only confirmed ones count as paid."""

    class ChainStatus(models.TextChoices):
        NOT_APPLICABLE = "n/a", _("Not on a chain")
        PENDING = "pending", _("Waiting for confirmations")
        CONFIRMED = "confirmed", _("Confirmed")
        FAILED = "failed", _("Not found or failed")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(_("method"), max_length=8, choices=PaymentMethod.choices)
    amount = models.DecimalField(_("amount"), **MONEY)  # in the invoice's currency
    currency = models.CharField(_("currency"), max_length=4, choices=CURRENCIES, default="USD")
    received_at = models.DateTimeField(_("received"))
    reference = models.CharField(_("bank reference"), max_length=120, blank=True)
    txid = models.CharField(_("transaction id"), max_length=100, blank=True)
    crypto_amount = models.DecimalField(_("crypto amount"), max_digits=20, decimal_places=8, null=True, blank=True)
    chain_status = models.CharField(
        _("chain status"), max_length=10, choices=ChainStatus.choices, default=ChainStatus.NOT_APPLICABLE
    )
    confirmations = models.PositiveIntegerField(_("confirmations"), default=0)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(fields=["method", "txid"], condition=~models.Q(txid=""), name="payment_txid_once"),
        ]

    def __str__(self):
        return f"{self.method} {self.amount} {self.currency} for {self.invoice_id}"


class PaymentAddress(models.Model):
    """The operator's pool of receiving addresses (BTC or USDT); each issued invoice takes an unused one, so a
    transaction to it identifies the invoice."""

    network = models.CharField(_("network"), max_length=8, choices=[("btc", "BTC"), ("usdt", "USDT")])
    address = models.CharField(_("address"), max_length=100, unique=True)
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payment_addresses",
        verbose_name=_("invoice"),
    )
    assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment address")
        verbose_name_plural = _("payment addresses")
        ordering = ["network", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "network"],
                condition=models.Q(invoice__isnull=False),
                name="payment_address_one_per_network",
            )
        ]

    def __str__(self):
        return self.address


class Commission(models.Model):
    """The sales owner's commission on a paid invoice: the contract's percentage of what was paid."""

    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="commission")
    sales_owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="commissions")
    rate_pct = models.DecimalField(_("rate (%)"), max_digits=5, decimal_places=2)
    base_amount = models.DecimalField(_("paid amount"), **MONEY)
    amount = models.DecimalField(_("commission"), **MONEY)
    currency = models.CharField(_("currency"), max_length=4, choices=CURRENCIES, default="USD")
    created_at = models.DateTimeField(_("earned"), auto_now_add=True)
    paid_out = models.BooleanField(_("paid out"), default=False)

    class Meta:
        verbose_name = _("commission")
        verbose_name_plural = _("commissions")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.amount} {self.currency} to {self.sales_owner_id}"


class SlaCertificate(models.Model):
    """A client's monthly SLA certificate: uptime against target and the credits, as signed JSON (Ed25519,
    ``hashinsight.billing.certificates``) and in ERC-721 metadata form; its SHA-256 goes into the day's Merkle
    tree like a statement's."""

    customer = models.ForeignKey("sites.Customer", on_delete=models.PROTECT, related_name="sla_certificates")
    contract = models.ForeignKey("sites.HostingContract", on_delete=models.PROTECT, related_name="sla_certificates")
    invoice = models.OneToOneField(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="sla_certificate"
    )
    month = models.DateField(_("month"))  # first day
    uptime_pct = models.DecimalField(_("SLA uptime (%)"), max_digits=6, decimal_places=3)
    target_pct = models.DecimalField(_("target (%)"), max_digits=5, decimal_places=2)
    met = models.BooleanField(_("target met"))
    credits = models.DecimalField(_("credits"), **MONEY, default=Decimal("0"))
    currency = models.CharField(_("currency"), max_length=4, choices=CURRENCIES, default="USD")
    document = models.JSONField(_("signed document"))  # {"payload": {...}, "signature": ..., "key_id": ...}
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    issued_at = models.DateTimeField(_("issued"), auto_now_add=True)

    class Meta:
        verbose_name = _("SLA certificate")
        verbose_name_plural = _("SLA certificates")
        ordering = ["-month", "customer_id"]
        constraints = [models.UniqueConstraint(fields=["contract", "month"], name="sla_certificate_once_per_month")]

    def __str__(self):
        return f"SLA {self.contract_id} {self.month:%Y-%m}"


class ProofRoot(models.Model):
    """One UTC day's Merkle tree over what was issued that day (statements' and SLA certificates' SHA-256) and the
    audit chain's head at closing; ``op_return_hex`` is the root as a Bitcoin OP_RETURN payload, ready to broadcast
    (broadcasting is optional and off by default)."""

    day = models.DateField(_("day"), unique=True)
    root_sha256 = models.CharField(_("Merkle root"), max_length=64)
    leaf_count = models.PositiveIntegerField(_("leaves"))
    audit_head_seq = models.BigIntegerField(_("audit chain head (seq)"), null=True)
    audit_head_hash = models.CharField(_("audit chain head (hash)"), max_length=64, blank=True)
    op_return_hex = models.CharField(_("OP_RETURN payload (hex)"), max_length=200)
    broadcast_txid = models.CharField(_("broadcast transaction"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("built"), auto_now_add=True)

    class Meta:
        verbose_name = _("daily proof root")
        verbose_name_plural = _("daily proof roots")
        ordering = ["-day"]

    def __str__(self):
        return f"{self.day}: {self.root_sha256[:16]}…"


class ProofLeaf(models.Model):
    """A leaf of a day's tree, in tree order: what it is, whose it is (for scoping downloads) and its hash."""

    class Kind(models.TextChoices):
        STATEMENT = "statement", _("Statement")
        SLA_CERTIFICATE = "sla_certificate", _("SLA certificate")
        CREDIT_NOTE = "credit_note", _("Credit note")
        AUDIT_HEAD = "audit_head", _("Audit chain head")

    root = models.ForeignKey(ProofRoot, on_delete=models.CASCADE, related_name="leaves", null=True, blank=True)
    day = models.DateField(_("day"))  # the day the leaf was issued; root is set when the day is closed
    index = models.PositiveIntegerField(_("position"), null=True, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    object_id = models.BigIntegerField(_("object"), null=True, blank=True)
    customer_id = models.IntegerField(_("hosting client"), null=True, blank=True)
    site_id = models.IntegerField(_("site"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("proof leaf")
        verbose_name_plural = _("proof leaves")
        ordering = ["day", "index", "id"]
        indexes = [models.Index(fields=["kind", "object_id"], name="proof_leaf_object")]
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id", "sha256"], name="proof_leaf_once"),
        ]

    def __str__(self):
        return f"{self.kind} {self.object_id} @ {self.day}"
