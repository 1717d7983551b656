"""Writes for miners and portfolios. Every change runs in one transaction through these functions."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from miners.models import Miner, MinerModel, PortfolioEntry
from sites.selectors import require_site_manageable

IDENTITY_FIELDS = ("ip", "mac", "username", "password")


def check_placement(*, actor, site, zone) -> None:
    """The rules every placement obeys, whether one miner or ten thousand are being written."""
    if zone.site_id != site.pk:
        raise DomainError(
            "zone_not_in_site", "The zone does not belong to the miner's site.", details={"zone": zone.pk}
        )
    # The caller saw the site through a read-only grant: a refusal, not a 404.
    require_site_manageable(user=actor, site_id=site.pk)


def _apply(miner: Miner, fields: dict) -> Miner:
    identity = {k: fields.pop(k) for k in IDENTITY_FIELDS if k in fields}
    old_serial = miner.serial
    for name, value in fields.items():
        setattr(miner, name, value)
    if identity or (miner.pk and miner.serial != old_serial and miner.identity_sealed):
        # Re-seal on a serial change too: the serial is bound into the ciphertext.
        current = Miner(serial=old_serial, identity_sealed=miner.identity_sealed).get_identity() if miner.pk else {}
        miner.set_identity(**{**current, **identity})
    return miner


def _duplicate_serial() -> DomainError:
    return DomainError("duplicate_serial", "A miner with this serial number already exists.", status=409)


@transaction.atomic
def miner_create(*, actor, **fields) -> Miner:
    check_placement(actor=actor, site=fields["site"], zone=fields["zone"])
    if Miner.objects.filter(serial=fields["serial"]).exists():
        raise _duplicate_serial()
    miner = _apply(Miner(), fields)
    miner.full_clean()
    try:
        # Two creates of one serial can both pass the checks; the unique index picks the winner,
        # and the savepoint keeps the caller's transaction usable to say so.
        with transaction.atomic():
            miner.save()
    except IntegrityError:
        if Miner.objects.filter(serial=miner.serial).exists():
            raise _duplicate_serial() from None
        raise
    outbox.publish(
        "miner.created",
        aggregate=f"miner:{miner.pk}",
        payload={
            "miner_id": miner.pk, "site_id": miner.site_id, "customer_id": miner.customer_id,
            "model_id": miner.model_id, "serial": miner.serial,
        },
    )  # fmt: skip
    return miner


def _publish_miner_changed(event_type: str, miner: Miner, *, old_site_id: int, old_customer_id: int | None) -> None:
    outbox.publish(
        event_type,
        aggregate=f"miner:{miner.pk}",
        payload={
            "miner_id": miner.pk, "site_id": miner.site_id, "old_site_id": old_site_id,
            "customer_id": miner.customer_id, "old_customer_id": old_customer_id, "model_id": miner.model_id,
        },
    )  # fmt: skip


@transaction.atomic
def miner_update(*, actor, miner: Miner, **fields) -> Miner:
    miner = Miner.objects.select_for_update().get(pk=miner.pk)
    old_site_id, old_customer_id = miner.site_id, miner.customer_id
    check_placement(actor=actor, site=miner.site, zone=miner.zone)
    check_placement(actor=actor, site=fields.get("site", miner.site), zone=fields.get("zone", miner.zone))
    if "serial" in fields and Miner.objects.exclude(pk=miner.pk).filter(serial=fields["serial"]).exists():
        raise DomainError("duplicate_serial", "A miner with this serial number already exists.", status=409)
    miner = _apply(miner, fields)
    miner.full_clean()
    miner.save()
    _publish_miner_changed("miner.updated", miner, old_site_id=old_site_id, old_customer_id=old_customer_id)
    return miner


@transaction.atomic
def miner_delete(*, actor, miner: Miner) -> None:
    miner = Miner.objects.select_for_update().select_related("site", "zone").get(pk=miner.pk)
    check_placement(actor=actor, site=miner.site, zone=miner.zone)
    pk = miner.pk
    miner.delete()
    miner.pk = pk  # the event names the row that is gone
    _publish_miner_changed("miner.deleted", miner, old_site_id=miner.site_id, old_customer_id=miner.customer_id)


def _portfolio_changed(user_id: int) -> None:
    outbox.publish("portfolio.changed", aggregate=f"user:{user_id}", payload={"user_id": user_id})


@transaction.atomic
def portfolio_entry_create(*, user, **fields) -> PortfolioEntry:
    entry = PortfolioEntry(user=user, **fields)
    entry.full_clean()
    entry.save()
    _portfolio_changed(user.pk)
    return entry


@transaction.atomic
def portfolio_entry_update(*, entry: PortfolioEntry, **fields) -> PortfolioEntry:
    entry = PortfolioEntry.objects.select_for_update().get(pk=entry.pk)
    old_user_id = entry.user_id
    for name, value in fields.items():
        setattr(entry, name, value)
    entry.full_clean()
    entry.save()
    _portfolio_changed(entry.user_id)
    if old_user_id != entry.user_id:  # moved to another user in admin: both portfolios changed
        _portfolio_changed(old_user_id)
    return entry


@transaction.atomic
def portfolio_entry_delete(*, entry: PortfolioEntry) -> None:
    entry = PortfolioEntry.objects.select_for_update().get(pk=entry.pk)
    user_id = entry.user_id
    entry.delete()
    _portfolio_changed(user_id)


def _miner_model_changed(model_id: int, action: str) -> None:
    outbox.publish(
        "miner_model.changed", aggregate=f"miner_model:{model_id}", payload={"model_id": model_id, "action": action}
    )


@transaction.atomic
def miner_model_create(*, actor, **fields) -> MinerModel:
    miner_model = MinerModel(**fields)
    miner_model.full_clean()
    miner_model.save()
    _miner_model_changed(miner_model.pk, "created")
    return miner_model


@transaction.atomic
def miner_model_update(*, actor, miner_model: MinerModel, **fields) -> MinerModel:
    miner_model = MinerModel.objects.select_for_update().get(pk=miner_model.pk)
    for name, value in fields.items():
        setattr(miner_model, name, value)
    miner_model.full_clean()
    miner_model.save()
    _miner_model_changed(miner_model.pk, "updated")
    return miner_model


@transaction.atomic
def miner_model_delete(*, actor, miner_model: MinerModel) -> None:
    miner_model = MinerModel.objects.select_for_update().get(pk=miner_model.pk)
    # Both references are PROTECT: refuse with a clear 409 instead of the database's error.
    if miner_model.miners.exists() or PortfolioEntry.objects.filter(model_id=miner_model.pk).exists():
        raise DomainError("model_in_use", "Miners of this model exist; it cannot be deleted.", status=409)
    model_id = miner_model.pk
    miner_model.delete()
    _miner_model_changed(model_id, "deleted")
