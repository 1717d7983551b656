"""The market pages: a site's power prices (a price chart over the chosen days, the list with sort, filter and CSV,
and an upload form) and the market page (the latest day, hashprice now, price, difficulty and hashprice over a
chosen range, CSV). Rules live in ``intelligence.power_price_services`` (operators read a visible site's prices,
hosting clients are refused; loading needs HOSTING FULL and a manageable site) and ``intelligence.market_data``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage, streamed_csv
from hashinsight.portal.views.common import module_required
from intelligence import market, market_data
from intelligence import power_price_services as svc
from intelligence.models import MarketDay, PowerMarket, PowerPrice
from sites.selectors import site_is_manageable

CHART_MAX_DAYS = 31  # the chart's widest window (2,976 real-time points); the list and CSV take any range
CHART_DEFAULT_DAYS = 7
MARKET_RANGES = [("90d", 90), ("1y", 365), ("3y", 365 * 3), ("all", None)]


def _site(request, slug: str):
    try:
        return svc.price_site_for_read(user=request.user, slug=slug)
    except DomainError as exc:
        if exc.status == 403:
            raise PermissionDenied(exc.message) from exc
        raise


class PriceFilterForm(ListFilterForm):
    market = forms.ChoiceField(
        label=gettext_lazy("Market"), required=False, choices=[("", gettext_lazy("All markets")), *PowerMarket.choices]
    )
    start = forms.DateField(
        label=gettext_lazy("From (UTC)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(label=gettext_lazy("To (UTC, inclusive)"), required=False,
                          widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    above = forms.DecimalField(
        label=gettext_lazy("Price above (USD/MWh)"), required=False,
        widget=forms.NumberInput(attrs={"placeholder": gettext_lazy("Price above (USD/MWh)"), "step": "any"}),
    )  # fmt: skip
    lookups = {"market": "market", "above": "usd_per_mwh__gt"}

    def filter_start(self, qs, value):
        return qs.filter(interval_start__gte=datetime.combine(value, time.min, tzinfo=UTC))

    def filter_end(self, qs, value):
        return qs.filter(interval_start__lt=datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC))


class PriceTable(ListPage):
    columns = [
        Column("start", gettext_lazy("Interval start (UTC)"), sort="interval_start"),
        Column("market", gettext_lazy("Market"), sort="market"),
        Column("minutes", gettext_lazy("Interval (min)"), sort="interval_minutes", numeric=True),
        Column("price", gettext_lazy("Price (USD/MWh)"), sort="usd_per_mwh", numeric=True),
        Column("source", gettext_lazy("Source"), sort="source"),
    ]
    csv_columns = [
        CsvColumn(gettext_lazy("Market"), "market", display=dict(PowerMarket.choices)),
        CsvColumn("timestamp_utc", "interval_start"),
        CsvColumn(gettext_lazy("Interval (min)"), "interval_minutes"),
        CsvColumn("usd_per_mwh", "usd_per_mwh"),
        CsvColumn(gettext_lazy("Source"), "source"),
    ]
    filter_form = PriceFilterForm
    default_sort = "-start"

    def __init__(self, request, site):
        self.site = site
        self.csv_name = f"power-prices-{site.slug}"
        super().__init__(request)

    def get_queryset(self):
        return PowerPrice.objects.filter(site=self.site)


class UploadForm(forms.Form):
    market = forms.ChoiceField(label=gettext_lazy("Market"), choices=PowerMarket.choices)
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("Columns timestamp_utc,usd_per_mwh; UTC times (e.g. 2025-07-01T00:00:00Z); one regular "
                               "step of 5, 15 or 60 minutes without gaps."),
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["market"].widget.attrs.update({"class": "form-select"})
        self.fields["file"].widget.attrs.update({"class": "form-control", "accept": ".csv,text/csv"})


def _chart_window(table: PriceTable) -> tuple[datetime | None, datetime | None]:
    """The chart's days: the filter's range (its last CHART_MAX_DAYS days), else the last week that has prices."""
    values = table.form.values()
    end_day, start_day = values.get("end"), values.get("start")
    if end_day is None:
        qs = table.get_queryset()
        if values.get("market"):
            qs = qs.filter(market=values["market"])
        last = qs.order_by("-interval_start").values_list("interval_start", flat=True).first()
        if last is None:
            return None, None
        end_day = last.astimezone(UTC).date() if start_day is None else start_day + timedelta(days=CHART_MAX_DAYS - 1)
    if start_day is None:
        start_day = end_day - timedelta(days=CHART_DEFAULT_DAYS - 1)
    start_day = max(start_day, end_day - timedelta(days=CHART_MAX_DAYS - 1))
    return datetime.combine(start_day, time.min, tzinfo=UTC), datetime.combine(end_day + timedelta(days=1), time.min,
                                                                                 tzinfo=UTC)  # fmt: skip


def _chart_series(site, start, end, market_filter) -> dict:
    series = {}
    if start is None:
        return series
    for value in PowerMarket.values:
        if market_filter and market_filter != value:
            continue
        rows = svc.power_prices(site=site, market=value, start=start, end=end).values_list(
            "interval_start", "usd_per_mwh"
        )
        series[value] = [[int(t.timestamp() * 1000), float(p)] for t, p in rows]
    return series


@module_required(Module.HOSTING)
def site_power_prices(request, slug: str):
    site = _site(request, slug)
    table = PriceTable(request, site)
    can_upload = has_access(request.user, Module.HOSTING, Access.FULL) and site_is_manageable(
        user=request.user, site_id=site.pk
    )
    upload_form, upload_error = UploadForm(), None
    if request.method == "POST":
        if not can_upload:
            raise PermissionDenied
        upload_form = UploadForm(request.POST, request.FILES)
        if upload_form.is_valid():
            upload = upload_form.cleaned_data["file"]
            try:
                summary = svc.power_prices_upload(
                    site=site, market=upload_form.cleaned_data["market"], data=upload.read(), actor=request.user,
                    filename=upload.name or "",
                )  # fmt: skip
            except DomainError as exc:
                upload_error = {"message": exc.message, "row": exc.details.get("row"),
                                "column": exc.details.get("column"), "code": exc.code}  # fmt: skip
            else:
                messages.success(
                    request,
                    _("%(count)s intervals of %(minutes)s min loaded (%(first)s … %(last)s UTC).")
                    % {"count": f"{summary.intervals:,}", "minutes": summary.step_minutes,
                       "first": f"{summary.first:%Y-%m-%d %H:%M}", "last": f"{summary.last:%Y-%m-%d %H:%M}"},
                )  # fmt: skip
                return redirect("portal:site-power-prices", slug=site.slug)
    elif request.GET.get("format") == "csv":
        return table.csv_response()  # refuses (400) to export anything but what was asked
    start, end = _chart_window(table)
    chart = {
        "series": _chart_series(site, start, end, table.form.values().get("market")),
        "labels": {value: str(label) for value, label in PowerMarket.choices},
        "unit": "USD/MWh",
        "empty": _("No prices in this range."),
    }
    table.paginate()
    context = {
        "table": table, "page": table.page, "rows": table.page.object_list, "form": table.form, "site": site,
        "summary": svc.power_price_summary(site=site), "chart": chart, "can_upload": can_upload,
        "upload_form": upload_form, "upload_error": upload_error,
        "chart_start": start, "chart_end": end - timedelta(days=1) if end else None, "chart_max_days": CHART_MAX_DAYS,
    }  # fmt: skip
    return render(request, "portal/market/power_prices.html", context, status=400 if upload_error else 200)


def _market_range(request) -> tuple[str, date | None, date | None, list[str]]:
    problems = []
    key = request.GET.get("range") or "1y"
    ranges = dict(MARKET_RANGES)
    start = end = None
    raw_start, raw_end = request.GET.get("start"), request.GET.get("end")
    if raw_start or raw_end:
        try:
            start = date.fromisoformat(raw_start) if raw_start else None
            end = date.fromisoformat(raw_end) if raw_end else None
            key = "custom"
        except ValueError:
            problems.append(_("The dates must be YYYY-MM-DD; showing the last year."))
            key, start, end = "1y", None, None
    if key != "custom":
        if key not in ranges:
            problems.append(_("Unknown range; showing the last year."))
            key = "1y"
        latest = MarketDay.objects.order_by("-date").values_list("date", flat=True).first()
        days = ranges[key]
        if latest is not None and days is not None:
            start, end = latest - timedelta(days=days - 1), latest
    return key, start, end, problems


@module_required(Module.ANALYTICS)
def market_overview(request):
    key, start, end, problems = _market_range(request)
    days = market_data.hashprice_series(start, end)
    if request.GET.get("format") == "csv":
        from intelligence.api.market_views import market_csv_chunks

        return streamed_csv(request, market_csv_chunks(days), "market-days")
    latest = market_data.latest_market_day()
    now = market_data.hashprice_of(latest) if latest else None
    health = market_data.market_health()
    chart = {
        "dates": [d.date.isoformat() for d in days],
        "price": [float(d.btc_price_usd) for d in days],
        "difficulty_t": [float(d.difficulty) / 1e12 for d in days],
        "hashprice": [float(d.hashprice_usd_per_th_day) for d in days],
        "labels": {
            "price": _("BTC price (USD)"),
            "difficulty": _("Difficulty (T)"),
            "hashprice": _("Hashprice (USD per TH/s per day)"),
        },
    }
    query = request.GET.copy()
    query["format"] = "csv"
    context = {
        "now": now, "latest": latest, "health": health, "chart": chart, "range_key": key, "start": start, "end": end,
        "ranges": [(k, label) for k, label in zip(
            [k for k, _d in MARKET_RANGES],
            [_("90 days"), _("1 year"), _("3 years"), _("All")], strict=True)],
        "problems": problems, "csv_url": "?" + query.urlencode(), "days_count": len(days),
        "stale_after_days": market.STALE_AFTER_DAYS,
        "age_days": health.get("age_days"),
        "difficulty_t": now.difficulty / 10**12 if now else None,
    }  # fmt: skip
    return render(request, "portal/market/overview.html", context)
