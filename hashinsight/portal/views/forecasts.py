"""The forecasts page (AI module): a target's history and forecast with 80 % / 95 % bands, the serving model's
backtest next to naive, which model serves and why, the points as CSV; for owners and admins, the model
registry of that target with activate / roll back (the same services as the API and admin).

Revenue has a subject: the reader's own fleet (``forecast:{user}``), or a site or hosting client they may read
(``revenue_forecast:{subject}``; ``forecasting.subject_choices`` lists them: a site owner its sites and the clients
they host, a client only itself). Any other subject answers 404."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core import cache as cache_helper
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import streamed_csv
from hashinsight.portal.views.common import module_required
from intelligence import forecasting
from intelligence.api.forecast_views import forecast_csv
from intelligence.models import ForecastModel, ForecastTarget

KEYS = {  # the forecast entry's key per target
    ForecastTarget.BTC_PRICE: "price",
    ForecastTarget.DIFFICULTY: "difficulty",
    ForecastTarget.HASHPRICE: "hashprice",
    ForecastTarget.REVENUE: "revenue",
}
REGISTRY_SORTS = {"version": "version", "-version": "-version", "status": "status", "trained": "trained_at",
                  "-trained": "-trained_at"}  # fmt: skip


def _target(request) -> str:
    target = request.GET.get("target") or ForecastTarget.HASHPRICE
    if target not in KEYS:
        raise Http404
    return target


def number(value) -> str:
    """A figure for people: difficulty in T (10¹²), money and counts grouped, small prices to 4 significant
    digits (hashprice is about 0.05 USD per TH/s per day: two decimals would show 0.04 for everything)."""
    if value is None:
        return "—"
    v = float(value)
    if abs(v) >= 1e12:
        return f"{v / 1e12:,.2f} T"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.4g}"


def _manages_registry(user) -> bool:
    return has_access(user, Module.AI, Access.FULL) and forecasting.sees_all_subjects(user)


def _subject(request, target: str) -> str:
    """The revenue subject asked for ("user:<own id>" by default); 404 for one the reader may not read."""
    own = f"user:{request.user.pk}"
    if target != ForecastTarget.REVENUE:
        return own
    subject = request.GET.get("subject") or own
    parsed = forecasting.parse_subject(subject)
    if parsed is None or (parsed[0] == "user" and subject != own):
        raise Http404
    if subject != own and not forecasting.may_read_subject(request.user, subject):
        raise Http404
    return subject


def _entry(request, target: str):
    """(the cache entry the page shows, its cache state, the subject)."""
    subject = _subject(request, target)
    if subject == f"user:{request.user.pk}":
        cached = cache_helper.get("forecast", id=request.user.pk)
    else:
        try:
            cached = cache_helper.get("revenue_forecast", subject=subject)
        except DomainError as exc:  # a site or client that does not exist (owners may ask for any id)
            if exc.status == 404:
                raise Http404 from None
            raise
    return cached, subject


def _history(target: str, entry: dict, days: int = 120) -> list[dict]:
    if target != ForecastTarget.REVENUE:
        return forecasting.history(target, days=days)
    # Revenue history: the same fleet at each past day's hashprice (what today's fleet would have earned).
    if "subject" in entry:
        fleet = forecasting.subject_fleet(entry["subject"]).fleet
    else:
        fleet = forecasting.user_fleet(entry["user_id"])
    past = forecasting.history(ForecastTarget.HASHPRICE, days=days)
    points = forecasting.revenue_points(
        [{"date": p["date"], "yhat": p["value"], "lo80": p["value"], "hi80": p["value"], "lo95": p["value"],
          "hi95": p["value"]} for p in past],
        fleet,
    )  # fmt: skip
    return [{"date": p["date"], "value": p["yhat"]} for p in points]


def _backtest(target: str, part: dict) -> tuple[ForecastModel | None, list[dict]]:
    """The serving model's backtest; when naive serves without a model, the latest trained model's (so the
    table still shows how the candidates compare with naive), which on a new install may be naive's own (the
    served metrics' ``forecasting.naive_backtest_ensure``)."""
    model_target = ForecastTarget.HASHPRICE if target == ForecastTarget.REVENUE else target
    model = None
    if part.get("model"):
        model = ForecastModel.objects.filter(pk=part["model"]["id"]).exclude(backtest={}).first()
    if model is None:
        model = forecasting.backtest_model(model_target)
    return model, forecasting.backtest_rows(model)


@module_required(Module.AI)
def forecast_page(request):
    target = _target(request)
    cached, subject = _entry(request, target)
    entry = cached.value
    part = entry[KEYS[target]]
    model, rows = _backtest(target, part)
    for row in rows:
        for side in ("model", "naive"):
            row[side] = {
                **row[side],
                "rmse_text": number(row[side].get("rmse")),
                "mae_text": number(row[side].get("mae")),
            }
    first, last = (part["points"][0], part["points"][-1]) if part["points"] else ({}, {})
    figures = {
        "first": {k: number(first.get(k)) for k in ("yhat", "lo80", "hi80")},
        "last": {k: number(last.get(k)) for k in ("yhat", "lo95", "hi95")},
    }
    registry = None
    if _manages_registry(request.user):
        model_target = ForecastTarget.HASHPRICE if target == ForecastTarget.REVENUE else target
        sort = request.GET.get("sort", "-version")
        registry = forecasting.model_list(user=request.user).filter(target=model_target, subject="")
        registry = registry.order_by(REGISTRY_SORTS.get(sort, "-version"), "-pk")
    chart = {
        "unit": part["unit"],
        "history": _history(target, entry),
        "points": part["points"],
        "labels": {
            "history": _("Observed"), "forecast": _("Forecast"),
            # xgettext:no-python-format
            "band80": _("80 % interval"),
            # xgettext:no-python-format
            "band95": _("95 % interval"),
        },
    }  # fmt: skip
    return TemplateResponse(
        request,
        "portal/forecast/forecasts.html",
        {
            "target": target,
            # only what this page serves (KEYS): an uploaded series has no page here, and offering it gave a 404
            "targets": [(value, label) for value, label in ForecastTarget.choices if value in KEYS],
            "part": part,
            "entry": entry,
            "cache_state": cached.state,
            "backtest_model": model,
            "backtest_rows": rows,
            # revenue is served from the hashprice model: its backtest is hashprice's, in hashprice's unit
            "backtest_unit": forecasting.UNIT[ForecastTarget.HASHPRICE]
            if target == ForecastTarget.REVENUE
            else part["unit"],
            "figures": figures,
            "generated": entry["generated_at"][:16].replace("T", " "),
            "algorithm_label": dict(ForecastModel.Algorithm.choices).get(part["algorithm"], part["algorithm"]),
            "registry": registry,
            "registry_sort": request.GET.get("sort", "-version"),
            "chart": chart,
            "subject": subject,
            "subjects": forecasting.subject_choices(request.user) if target == ForecastTarget.REVENUE else [],
        },
    )


@module_required(Module.AI)
def forecast_csv_download(request):
    target = _target(request)
    cached, subject = _entry(request, target)
    name = f"forecast-{target}" if subject.startswith("user:") else f"forecast-{target}-{subject.replace(':', '-')}"
    return streamed_csv(request, forecast_csv(cached.value, targets=(KEYS[target],)), name)


def _registry_action(request, pk: int, service, done: str):
    if not _manages_registry(request.user):
        raise Http404  # the registry is not shown to anyone else
    model = get_object_or_404(forecasting.model_list(user=request.user), pk=pk)
    try:
        service(model_id=model.pk, actor=request.user, reason=request.POST.get("reason", "")[:500])
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done % {"model": model})
        # The one who changed it sees the effect at once; everyone else's entry is rebuilt on their next read.
        cache_helper.build_and_store("forecast", id=request.user.pk)
    return redirect(f"{reverse('portal:forecasts')}?target={model.target}")


@require_POST
@module_required(Module.AI, Access.FULL)
def forecast_model_activate(request, pk: int):
    return _registry_action(request, pk, forecasting.model_activate, _("%(model)s is now active."))


@require_POST
@module_required(Module.AI, Access.FULL)
def forecast_model_rollback(request, pk: int):
    return _registry_action(request, pk, forecasting.model_rollback, _("%(model)s rolled back."))
