"""The transactional outbox: events written in the same transaction as the change they describe."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboxEvent(models.Model):
    """One event, from the commit that produced it until every handler has run.

    pending → dispatched (handed to Celery) → done, or back to pending with a later
    ``next_attempt_at`` after a failure, or failed after the last attempt (see EventFailure)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DISPATCHED = "dispatched", _("Dispatched")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(_("event type"), max_length=64)
    schema_version = models.PositiveSmallIntegerField(_("schema version"), default=1)
    aggregate = models.CharField(_("aggregate"), max_length=120, help_text=_("what changed, e.g. user:12"))
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(_("dispatched"), null=True, blank=True)
    # The worker (one process start, see observability.heartbeat) applying a dispatched event. If
    # that worker stops beating, the relay sends the event again at once instead of after the
    # dispatch timeout. Empty while the event waits in the broker's queue.
    worker = models.CharField(_("worker"), max_length=200, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox event")
        verbose_name_plural = _("outbox events")
        ordering = ["created_at"]
        indexes = [
            # The relay's scan: unfinished rows by when they are due.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="outbox_unfinished",
                condition=models.Q(status__in=["pending", "dispatched"]),
            ),
        ]

    def __str__(self):
        return f"{self.event_type} {self.aggregate} ({self.status})"


class HandlerReceipt(models.Model):
    """Proof that one handler applied one event. Written in the handler's own transaction, so a
    redelivered event skips handlers that already ran: at-least-once delivery, exactly-once effects."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="receipts")
    handler = models.CharField(max_length=120)
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("handler receipt")
        verbose_name_plural = _("handler receipts")
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="receipt_once_per_handler")]

    def __str__(self):
        return f"{self.handler} applied {self.event_id}"


class EventFailure(models.Model):
    """An event whose handler failed on its last attempt, kept for inspection and replay."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="failures", verbose_name=_("event"))
    handler = models.CharField(_("handler"), max_length=120)
    error = models.TextField(_("error"))
    traceback = models.TextField(_("traceback"))
    payload = models.JSONField(_("payload"))
    attempts = models.PositiveIntegerField(_("attempts"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    replayed_at = models.DateTimeField(_("replayed"), null=True, blank=True)

    class Meta:
        verbose_name = _("event failure")
        verbose_name_plural = _("event failures")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.event.event_type} → {self.handler}"


class CoalescedWork(models.Model):
    """A unit of follow-up work (e.g. 'recalculate user 12') requested by many events; one row per
    key while it waits, so a burst of events inside the window runs the work once."""

    key = models.CharField(max_length=120, unique=True)
    task = models.CharField(max_length=120)
    args = models.JSONField(default=list)
    due_at = models.DateTimeField()
    requests = models.PositiveIntegerField(default=1)
    # Lease of the run in progress: a second delivery of the key waits its turn instead of running
    # the work twice at once; a lease left by a dead worker lapses and the sweep reschedules the key.
    running_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("coalesced work")
        verbose_name_plural = _("coalesced work")

    def __str__(self):
        return self.key


class JobRun(models.Model):
    """One run of a scheduled or manual batch job, with what it processed and how it ended."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        SUCCESS = "success", _("Success")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    class Priority(models.IntegerChoices):
        LOW = 1, _("Low")
        NORMAL = 5, _("Normal")
        HIGH = 9, _("High")

    job_type = models.CharField(_("job type"), max_length=80, db_index=True)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(_("trigger"), max_length=20, default="schedule")  # schedule | manual | event
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    succeeded = models.PositiveIntegerField(_("succeeded"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    retries = models.PositiveIntegerField(_("retries"), default=0)
    error = models.TextField(_("error"), blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["job_type", "-created_at"], name="jobrun_type_recent")]

    def __str__(self):
        return f"{self.job_type} {self.status}"


GENESIS_HASH = "0" * 64


def new_audit_id() -> str:
    import secrets

    return "evt_" + secrets.token_hex(12)


class AuditEventQuerySet(models.QuerySet):
    """Audit rows are written once by ``hashinsight.events.audit.audit_append`` and never changed or
    deleted through the ORM; tampering needs raw SQL, and ``verify_chain`` then names the broken row."""

    def update(self, **kwargs):
        raise PermissionError("audit events are append-only")

    def delete(self):
        raise PermissionError("audit events are append-only")

    update.queryset_only = True
    delete.queryset_only = True


class AuditEvent(models.Model):
    """One link of the tamper-evident audit chain: ``event_hash`` = SHA-256 over ``prev_hash`` and the
    canonical event (see ``hashinsight.events.audit.event_hash``); ``seq`` is the chain's order."""

    class ActorType(models.TextChoices):
        USER = "user", _("User")
        DEVICE = "device", _("Device")
        SYSTEM = "system", _("System")
        AI = "ai", _("AI")

    public_id = models.CharField(_("id"), max_length=40, unique=True, default=new_audit_id, editable=False)
    seq = models.BigIntegerField(_("sequence"), unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), editable=False, db_index=True)
    # The site id is part of the hashed event, so the row must outlive the site unchanged: no database
    # constraint and DO_NOTHING (PROTECT would forbid deleting any site that was ever audited,
    # SET_NULL would rewrite a hashed field and break the chain).
    site = models.ForeignKey(
        "sites.Site",
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        editable=False,
    )
    actor_type = models.CharField(_("actor type"), max_length=10, choices=ActorType.choices, editable=False)
    actor_id = models.CharField(_("actor id"), max_length=64, blank=True, editable=False)
    event_type = models.CharField(_("event type"), max_length=64, editable=False)
    reference = models.CharField(_("reference"), max_length=200, blank=True, editable=False)
    payload = models.JSONField(_("payload"), default=dict, editable=False)
    prev_hash = models.CharField(_("previous hash"), max_length=64, editable=False)
    event_hash = models.CharField(_("hash"), max_length=64, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-seq"]
        constraints = [
            # A fork is two events naming the same predecessor: impossible whatever the locking did.
            models.UniqueConstraint(fields=["prev_hash"], name="audit_one_successor"),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="audit_seq_positive"),
        ]
        indexes = [
            models.Index(fields=["event_type", "-seq"], name="audit_type_recent"),
            models.Index(fields=["reference", "-seq"], name="audit_reference_recent"),
            models.Index(fields=["site", "-seq"], name="audit_site_recent"),
        ]

    def __str__(self):
        return f"#{self.seq} {self.event_type} {self.reference}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")
