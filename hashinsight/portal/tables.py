"""List pages: sorting, filtering, pagination, URL state and CSV export, declared once per page.

A page declares what it shows and the toolkit does the rest, the same way on every page:

    class MinerTable(ListPage):
        columns = [Column("serial", _("Serial"), sort="serial"), ...]
        csv_columns = [CsvColumn(_("Serial"), "serial"), ...]
        filter_form = MinerFilterForm               # a ListFilterForm: fields + how each filters
        default_sort = "serial"

        def get_queryset(self):                      # already scoped by the app's selector
            return miner_selectors.miner_list(user=self.request.user)

    def miner_list(request):
        return MinerTable(request).respond("portal/miner_list.html")

The whole state lives in the query string (filter fields, ``sort``, ``page``); sort headers, page
links and the export link are built from the state actually shown, so they keep the filters. A
value the page cannot use (``site=abc``, ``page=999999``, ``sort=nonsense``) is dropped and named
in ``problems``, which the page shows as an alert; the rest of the page still renders.

``?format=csv`` answers the same filtered, sorted rows as a streamed CSV (every row, not one page).

Keyset mode (``keyset = True``) is for lists too long for ``OFFSET`` and ``COUNT``: the page supplies
``keyset_fetch`` (one page after/before an opaque ``cursor``, from the app's own keyset selector) and
``keyset_order`` (the same order for the export); ``?cursor=`` replaces ``?page=``, the bar offers
First / Previous / Next, and nothing counts the whole list. A column's ``sort`` is then the sort key the
selector understands.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db import connections, transaction
from django.db.models import F, QuerySet
from django.db.models.expressions import BaseExpression
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

PAGE_SIZE = 50
CSV_CHUNK_ROWS = 2000  # rows per database fetch and per chunk sent
RESERVED = ("sort", "page", "format", "cursor")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """A column of the HTML table. ``sort`` is the ordering used when sorting by it (a field path or
    an expression); None means the column is not sortable. ``key`` is what ``?sort=`` names."""

    key: str
    label: str
    sort: str | BaseExpression | None = None
    numeric: bool = False


@dataclass(frozen=True)
class CsvColumn:
    """A CSV column: the header (with its unit), a ``values_list`` path, and an optional ``display``,
    either a mapping (choice value → label) or a function of the raw value."""

    header: str
    field: str
    display: Mapping | Callable[[Any], Any] | None = None


class InvalidCursor(ValueError):
    """Raised by ``ListPage.keyset_fetch`` for a cursor it cannot use (from another sort, or mangled)."""


@dataclass
class KeysetSlice:
    """What ``keyset_fetch`` answers: the rows in display order and the cursors of the pages around them."""

    rows: list
    next_cursor: str | None
    prev_cursor: str | None


@dataclass
class KeysetPage:
    """The page shown in keyset mode (what ``page`` is in the template): no numbers, no total."""

    object_list: list
    next_cursor: str | None
    prev_cursor: str | None
    cursor: str | None

    def has_next(self) -> bool:
        return self.next_cursor is not None

    def has_previous(self) -> bool:
        return self.prev_cursor is not None

    @property
    def is_first(self) -> bool:
        return self.cursor is None


class ListFilterForm(forms.Form):
    """Filter form of a list page. ``lookups`` maps a field to the ORM lookup it filters on; a
    ``filter_<name>(qs, value)`` method handles anything else. Empty values do not filter;
    ``defaults`` gives the value used when a field is absent, empty or invalid."""

    lookups: dict[str, str] = {}
    defaults: dict[str, Any] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            assert name not in RESERVED, f"{name!r} is reserved for the table's own state"
            css = (
                "form-select form-select-sm"
                if isinstance(field.widget, forms.Select)
                else "form-control form-control-sm"
            )
            field.widget.attrs.setdefault("class", css)
            field.widget.attrs.setdefault("aria-label", str(field.label))
            if isinstance(field.widget, forms.TextInput):
                field.widget.attrs.setdefault("placeholder", str(field.label))

    def values(self) -> dict[str, Any]:
        """The value of every field the page applies: valid input, else the field's default."""
        self.is_valid()  # fills cleaned_data with the valid fields only
        out = {}
        for name in self.fields:
            value = self.cleaned_data.get(name) if name not in self.errors else None
            out[name] = value if value not in (None, "", [], ()) else self.defaults.get(name)
        return out

    def filter_queryset(self, qs: QuerySet) -> QuerySet:
        for name, value in self.values().items():
            if value in (None, "", [], ()):
                continue
            method = getattr(self, f"filter_{name}", None)
            if method is not None:
                qs = method(qs, value)
            elif name in self.lookups:
                qs = qs.filter(**{self.lookups[name]: value})
        return qs


class ListPage:
    """One list page: subclass, declare, and call ``respond``. See the module docstring."""

    columns: Sequence[Column] = ()
    csv_columns: Sequence[CsvColumn] = ()
    filter_form: type[ListFilterForm] = ListFilterForm
    default_sort: str = "-pk"
    page_size: int = PAGE_SIZE
    csv_name: str = "export"
    keyset: bool = False  # keyset pagination (see the module docstring) instead of page numbers

    def __init__(self, request):
        self.request = request
        self.problems: list[str] = []
        self.form = self.filter_form(request.GET, **self.form_kwargs())
        for name, errors in self.form.errors.items():
            field = self.form.fields.get(name)
            if field is not None:
                field.widget.attrs["class"] += " is-invalid"
            label = field.label if field is not None else _("Filters")
            self.problems.append(_("%(field)s: %(error)s The filter was not applied.") % {
                "field": label, "error": " ".join(errors)})  # fmt: skip
        self.sort_key, self.descending = self._parse_sort(request.GET.get("sort"))
        self.filtered = self.form.filter_queryset(self.get_queryset())
        if self.keyset:
            self.queryset = self.keyset_order(self.filtered, sort=self.sort_value)
        else:
            self.queryset = self._ordered(self.filtered)
        self.page = None

    # -- what a page declares ------------------------------------------------------------------
    def get_queryset(self) -> QuerySet:
        """The rows this user may see (from the app's selector), before filters and sorting."""
        raise NotImplementedError

    def form_kwargs(self) -> dict:
        """Extra keyword arguments for the filter form (e.g. the sites this user can see)."""
        return {}

    def context(self) -> dict:
        """Extra template context."""
        return {}

    def keyset_fetch(self, qs: QuerySet, *, sort: str, cursor: str | None, limit: int) -> KeysetSlice:
        """Keyset mode: one page of ``qs`` (filtered, not ordered) in ``sort`` order after ``cursor``
        (None: the first page); raise ``InvalidCursor`` for a cursor that does not fit."""
        raise NotImplementedError

    def keyset_order(self, qs: QuerySet, *, sort: str) -> QuerySet:
        """Keyset mode: ``qs`` in the pages' order (for the export)."""
        raise NotImplementedError

    def csv_queryset(self, qs: QuerySet) -> QuerySet:
        """The export's queryset (the page's own, filtered and sorted); override to trim joins."""
        return qs

    # -- sorting ---------------------------------------------------------------------------------
    def _sortable(self) -> dict[str, Column]:
        return {c.key: c for c in self.columns if c.sort is not None}

    def _parse_sort(self, raw: str | None) -> tuple[str, bool]:
        default_key, default_desc = self.default_sort.lstrip("-"), self.default_sort.startswith("-")
        if not raw:
            return default_key, default_desc
        key, desc = raw.lstrip("-"), raw.startswith("-")
        if key in self._sortable() or key == default_key:
            return key, desc
        default_label = self._sortable()[default_key].label if default_key in self._sortable() else default_key
        self.problems.append(
            _("The table cannot be sorted by “%(sort)s”; it is sorted by %(default)s instead.")
            % {"sort": raw[:40], "default": default_label}
        )
        return default_key, default_desc

    def _ordered(self, qs: QuerySet) -> QuerySet:
        column = self._sortable().get(self.sort_key)
        expressions = column.sort if column is not None else self.sort_key
        if not isinstance(expressions, list | tuple):
            expressions = [expressions]
        order = []
        for expr in expressions:
            expr = F(expr) if isinstance(expr, str) else expr
            order.append(expr.desc(nulls_last=True) if self.descending else expr.asc(nulls_last=True))
        # The primary key breaks ties, so rows never swap places between pages.
        order.append(F("pk").desc() if self.descending else F("pk").asc())
        return qs.order_by(*order)

    @property
    def sort_value(self) -> str:
        return ("-" if self.descending else "") + self.sort_key

    # -- URL state -------------------------------------------------------------------------------
    def state(self) -> QueryDict:
        """The query string of what is shown: valid filter values and the sort, not the page."""
        query = QueryDict(mutable=True)
        for name in self.form.fields:
            if name in self.form.errors:
                continue
            for value in self.request.GET.getlist(name):
                if value != "":
                    query.appendlist(name, value)
        sort = ("-" if self.descending else "") + self.sort_key
        if sort != self.default_sort:
            query["sort"] = sort
        return query

    def url(self, **changes) -> str:
        query = self.state()
        for key, value in changes.items():
            if value is None:
                query.pop(key, None)
            else:
                query[key] = str(value)
        return "?" + query.urlencode() if query else "?"

    @property
    def sort_param(self) -> str:
        """The current ``sort`` value, or "" for the default (kept by the filter form's hidden input)."""
        return self.state().get("sort", "")

    @property
    def export_url(self) -> str:
        return self.url(format="csv", page=None)

    @property
    def query(self) -> str:
        """The state with the page number, to come back to after an action on the page."""
        query = self.state()
        if isinstance(self.page, KeysetPage):
            if self.page.cursor:
                query["cursor"] = self.page.cursor
        elif self.page is not None and self.page.number > 1:
            query["page"] = str(self.page.number)
        return query.urlencode()

    def headers(self) -> list[dict]:
        out = []
        for column in self.columns:
            header = {"key": column.key, "label": column.label, "numeric": column.numeric, "url": None, "sorted": None}
            if column.sort is not None:
                active = column.key == self.sort_key
                header["sorted"] = ("descending" if self.descending else "ascending") if active else None
                # A click on the active column flips it; on another column it sorts ascending first.
                flipped = column.key if self.descending else "-" + column.key
                header["url"] = self.url(sort=flipped if active else column.key, page=None)
            out.append(header)
        return out

    # -- pagination ------------------------------------------------------------------------------
    def paginate(self):
        if self.keyset:
            return self.paginate_keyset()
        paginator = Paginator(self.queryset, self.page_size)
        raw = self.request.GET.get("page")
        number = 1
        if raw not in (None, ""):
            try:
                number = int(raw)
                if number < 1:
                    raise ValueError
            except ValueError:
                self.problems.append(_("“%(page)s” is not a page number; showing page 1.") % {"page": raw[:20]})
                number = 1
        if number > paginator.num_pages:
            self.problems.append(
                _("There is no page %(page)s; showing the last page, %(last)s.")
                % {"page": number, "last": paginator.num_pages}
            )
            number = paginator.num_pages
        self.page = paginator.page(number)
        return self.page

    def paginate_keyset(self):
        cursor = self.request.GET.get("cursor") or None
        try:
            found = self.keyset_fetch(self.filtered, sort=self.sort_value, cursor=cursor, limit=self.page_size)
        except InvalidCursor:
            self.problems.append(_("This page link no longer fits the list; showing the first page."))
            cursor = None
            found = self.keyset_fetch(self.filtered, sort=self.sort_value, cursor=None, limit=self.page_size)
        # A cursor that led back to the first page (Previous from the second) shows as the first page.
        cursor = cursor if found.prev_cursor is not None else None
        self.page = KeysetPage(found.rows, found.next_cursor, found.prev_cursor, cursor)
        return self.page

    @property
    def url_first(self) -> str:
        return self.url(cursor=None, page=None)

    @property
    def url_previous(self) -> str:
        if isinstance(self.page, KeysetPage):
            return self.url(cursor=self.page.prev_cursor) if self.page.has_previous() else ""
        return self.url(page=self.page.previous_page_number()) if self.page.has_previous() else ""

    @property
    def url_next(self) -> str:
        if isinstance(self.page, KeysetPage):
            return self.url(cursor=self.page.next_cursor) if self.page.has_next() else ""
        return self.url(page=self.page.next_page_number()) if self.page.has_next() else ""

    def page_links(self) -> list[dict]:
        """Links for the pagination bar: first, last and two around the current page, with gaps."""
        page = self.page
        total, current = page.paginator.num_pages, page.number
        wanted = sorted({1, total, *range(max(1, current - 2), min(total, current + 2) + 1)})
        links, previous = [], 0
        for number in wanted:
            if number - previous > 1:
                links.append({"gap": True})
            links.append({"number": number, "url": self.url(page=number), "current": number == current})
            previous = number
        return links

    # -- responses -------------------------------------------------------------------------------
    def respond(self, template: str):
        fmt = self.request.GET.get("format")
        if fmt == "csv":
            return self.csv_response()
        if fmt:
            self.problems.append(_("“%(format)s” is not an export format; use CSV.") % {"format": fmt[:20]})
        self.paginate()
        context = {"table": self, "page": self.page, "rows": self.page.object_list, "form": self.form}
        context.update(self.context())
        return render(self.request, template, context)

    def csv_response(self):
        if self.problems:
            # An export is a file the user keeps: never quietly export something other than asked.
            body = _("Nothing was exported:") + "\n" + "\n".join(str(p) for p in self.problems) + "\n"
            return HttpResponse(body, status=400, content_type="text/plain; charset=utf-8")
        return streamed_csv(self.request, csv_chunks(self.csv_columns, self.csv_queryset(self.queryset)), self.csv_name)


def safe_cell(value: Any) -> Any:
    """Neutralise text a spreadsheet would run as a formula; numbers are left as numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if value is None:
        return ""
    return value


def csv_chunks(columns: Sequence[CsvColumn], qs: QuerySet) -> Iterator[bytes]:
    """The CSV as byte chunks: the header at once, then ``CSV_CHUNK_ROWS`` rows per chunk, read with a
    database cursor in chunks of the same size (``iterator``), so memory stays flat for any size."""
    displays = []
    for column in columns:
        if isinstance(column.display, Mapping):
            labels = {key: str(label) for key, label in column.display.items()}  # translated once
            displays.append(lambda value, labels=labels: labels.get(value, value))
        else:
            displays.append(column.display)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    # The byte-order mark lets spreadsheet programs read UTF-8 (site and client names, Chinese headers).
    buffer.write("\ufeff")
    writer.writerow([safe_cell(str(c.header)) for c in columns])
    yield buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    with _streaming_read(qs.db):
        rows = qs.values_list(*[c.field for c in columns]).iterator(chunk_size=CSV_CHUNK_ROWS)
        for n, row in enumerate(rows, start=1):
            writer.writerow([safe_cell(fn(v) if fn else v) for fn, v in zip(displays, row, strict=True)])
            if n % CSV_CHUNK_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()


def _streaming_read(using: str):
    """On PostgreSQL, a transaction around the read: outside one, Django's server-side cursor is
    declared WITH HOLD, which makes PostgreSQL run the whole query and store its result before the
    first row comes back (first rows after ~0.4 s at 100,000 miners instead of ~0.05 s). Inside one the
    rows stream from the plan, and the export is one consistent snapshot. Not on SQLite, where our
    transactions start IMMEDIATE and would hold the write lock for the whole download."""
    if connections[using].vendor == "postgresql":
        return transaction.atomic(using=using)
    return nullcontext()


def streamed_csv(request, chunks: Iterator[bytes], name: str) -> StreamingHttpResponse:
    """The one way a CSV file is sent (list pages and API exports): streamed, named ``name-<time>.csv``,
    never cached, passed on by proxies as it comes."""
    response = StreamingHttpResponse(_for_server(request, chunks), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    response["X-Accel-Buffering"] = "no"  # proxies pass chunks on as they come
    response["Cache-Control"] = "no-store"
    return response


def _for_server(request, chunks: Iterator[bytes]):
    """Under ASGI Django reads a synchronous iterator into a list before sending it (memory grows with
    the export), so there the chunks are pulled one by one in the request's own thread instead."""
    if isinstance(request, ASGIRequest):
        return _async_chunks(chunks)
    return chunks


async def _async_chunks(chunks: Iterator[bytes]):
    pull = sync_to_async(next, thread_sensitive=True)
    try:
        while True:
            chunk = await pull(chunks, None)
            if chunk is None:
                return
            yield chunk
    finally:
        # A client that disconnects mid-export must not leave the database cursor open.
        if hasattr(chunks, "close"):
            await sync_to_async(chunks.close, thread_sensitive=True)()
