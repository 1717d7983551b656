"""Proof pages (module WEB3, every role that reads it: owners, admins, site owners, hosting clients): the daily
Merkle roots (sorted, filtered, exported; each OP_RETURN script with a copy button), the documents whose proofs the
user may download, and "Verify a statement": upload a file and its proof, see OK or which check failed.

Everything goes through ``hashinsight.billing.proofs`` (the API and ``manage.py verify_statement`` share the
verification). A proof outside the user's scope is a 404; one whose day is not closed yet a 409 page."""

from __future__ import annotations

import json

from django import forms
from django.db.models import Case, OuterRef, Subquery, When
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from hashinsight.accounts.roles import Module
from hashinsight.billing import proofs
from hashinsight.billing.api.proofs_views import MAX_DOCUMENT_BYTES, ROOT_CSV
from hashinsight.billing.models import Invoice, ProofLeaf, SlaCertificate
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required

BROADCAST_CHOICES = [("", gettext_lazy("Broadcast or not")), ("yes", gettext_lazy("Broadcast")),
                     ("no", gettext_lazy("Not broadcast"))]  # fmt: skip


class RootFilterForm(ListFilterForm):
    start = forms.DateField(required=False, label=gettext_lazy("From (UTC day)"),
                            widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    end = forms.DateField(required=False, label=gettext_lazy("To (UTC day)"),
                          widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    broadcast = forms.ChoiceField(required=False, choices=BROADCAST_CHOICES, label=gettext_lazy("Broadcast"))
    lookups = {"start": "day__gte", "end": "day__lte"}

    def filter_broadcast(self, qs, value):
        return qs.exclude(broadcast_txid="") if value == "yes" else qs.filter(broadcast_txid="")


class RootTable(ListPage):
    columns = [
        Column("day", gettext_lazy("Day (UTC)"), sort="day"),
        Column("root", gettext_lazy("Merkle root")),
        Column("leaves", gettext_lazy("Leaves"), sort="leaf_count", numeric=True),
        Column("audit", gettext_lazy("Audit chain head"), sort="audit_head_seq", numeric=True),
        Column("op_return", gettext_lazy("OP_RETURN script (hex)")),
        Column("broadcast", gettext_lazy("Broadcast transaction")),
    ]
    csv_columns = ROOT_CSV
    filter_form = RootFilterForm
    default_sort = "-day"
    page_size = 31
    csv_name = "proof-roots"

    def get_queryset(self):
        return proofs.root_list()  # not secret: every WEB3 reader sees every root


@module_required(Module.WEB3)
def proof_root_list(request):
    return RootTable(request).respond("portal/proofs/root_list.html")


KIND_CHOICES = [("", gettext_lazy("Any document")), *[(k, label) for k, label in ProofLeaf.Kind.choices
                                                      if k != ProofLeaf.Kind.AUDIT_HEAD]]  # fmt: skip
STATE_CHOICES = [("", gettext_lazy("Closed or waiting")), ("closed", gettext_lazy("In a closed day")),
                 ("waiting", gettext_lazy("Waiting for its day to close"))]  # fmt: skip


class DocumentFilterForm(ListFilterForm):
    kind = forms.ChoiceField(required=False, choices=KIND_CHOICES, label=gettext_lazy("Document"))
    state = forms.ChoiceField(required=False, choices=STATE_CHOICES, label=gettext_lazy("State"))
    start = forms.DateField(required=False, label=gettext_lazy("Issued from (UTC day)"),
                            widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    end = forms.DateField(required=False, label=gettext_lazy("Issued to (UTC day)"),
                          widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    lookups = {"kind": "kind", "start": "day__gte", "end": "day__lte"}

    def filter_state(self, qs, value):
        return qs.filter(root__isnull=value == "waiting")


class DocumentTable(ListPage):
    columns = [
        Column("day", gettext_lazy("Issued (UTC day)"), sort="day"),
        Column("kind", gettext_lazy("Document"), sort="kind"),
        Column("object", gettext_lazy("Reference"), sort="object_id", numeric=True),
        Column("tree", gettext_lazy("Tree of"), sort="root__day"),
        Column("sha256", gettext_lazy("SHA-256")),
        Column("proof", gettext_lazy("Proof")),
    ]
    csv_columns = [
        CsvColumn(gettext_lazy("Issued (UTC day)"), "day"),
        CsvColumn(gettext_lazy("Document"), "kind", display=dict(ProofLeaf.Kind.choices)),
        CsvColumn(gettext_lazy("Reference"), "object_id"),
        CsvColumn(gettext_lazy("Tree of (UTC day)"), "root__day"),
        CsvColumn(gettext_lazy("Position"), "index"),
        CsvColumn(gettext_lazy("SHA-256"), "sha256"),
        CsvColumn(gettext_lazy("Merkle root"), "root__root_sha256"),
    ]
    filter_form = DocumentFilterForm
    default_sort = "-day"
    csv_name = "proof-documents"

    def get_queryset(self):
        # The invoice number / certificate month of each leaf: one subquery each, not a query per row.
        number = Invoice.objects.filter(pk=OuterRef("object_id")).values("number")[:1]
        month = SlaCertificate.objects.filter(pk=OuterRef("object_id")).values("month")[:1]
        return (
            proofs.visible_leaves(self.request.user)
            .exclude(kind=ProofLeaf.Kind.AUDIT_HEAD)
            .select_related("root")
            .annotate(
                invoice_number=Case(When(kind=ProofLeaf.Kind.STATEMENT, then=Subquery(number))),
                certificate_month=Case(When(kind=ProofLeaf.Kind.SLA_CERTIFICATE, then=Subquery(month))),
            )
        )


@module_required(Module.WEB3)
def proof_document_list(request):
    return DocumentTable(request).respond("portal/proofs/document_list.html")


def _download(request, fetch) -> HttpResponse:
    try:
        document = fetch()
    except DomainError as exc:
        if exc.status == 404:
            from django.http import Http404

            raise Http404 from exc
        return render(request, "portal/proofs/not_ready.html", {"error": exc}, status=exc.status)
    response = HttpResponse(json.dumps(document, indent=2) + "\n", content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{proofs.proof_filename(document)}"'
    response["Cache-Control"] = "no-store"
    return response


@module_required(Module.WEB3)
def invoice_proof_download(request, pk: int):
    return _download(request, lambda: proofs.invoice_proof(user=request.user, invoice_id=pk))


@module_required(Module.WEB3)
def certificate_proof_download(request, pk: int):
    return _download(request, lambda: proofs.certificate_proof(user=request.user, certificate_id=pk))


@module_required(Module.WEB3)
def leaf_proof_download(request, pk: int):
    """The proof of any document leaf the user may see (the documents page links here)."""

    def fetch():
        leaf = proofs.visible_leaves(request.user).exclude(kind=ProofLeaf.Kind.AUDIT_HEAD).filter(pk=pk).first()
        if leaf is None:
            raise DomainError("not_found", _("No such document."), status=404)
        return proofs.proof_for(leaf)

    return _download(request, fetch)


class VerifyForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Statement or certificate file"),
        help_text=gettext_lazy("The statement CSV or SLA certificate JSON exactly as you downloaded it."),
    )
    proof = forms.FileField(
        label=gettext_lazy("Proof file"), required=False,
        help_text=gettext_lazy("The proof JSON downloaded for that document."),
    )  # fmt: skip
    proof_text = forms.CharField(
        label=gettext_lazy("…or paste the proof"), required=False, max_length=proofs.MAX_PROOF_BYTES,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("file", "proof"):
            self.fields[name].widget.attrs.update({"class": "form-control"})
        self.fields["file"].widget.attrs["accept"] = ".csv,.json,text/csv,application/json"
        self.fields["proof"].widget.attrs["accept"] = ".json,application/json"
        self.fields["proof_text"].widget.attrs.update({"class": "form-control font-monospace small"})

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None and upload.size > MAX_DOCUMENT_BYTES:
            self.add_error("file", _("The file is larger than %s MB.") % (MAX_DOCUMENT_BYTES // (1024 * 1024)))
        proof = cleaned.get("proof")
        if proof is not None and proof.size > proofs.MAX_PROOF_BYTES:
            self.add_error("proof", _("This file is larger than any proof."))
        if proof is None and not (cleaned.get("proof_text") or "").strip():
            self.add_error("proof", _("Choose the proof file or paste the proof."))
        return cleaned


CHECK_LABELS = {
    "proof": gettext_lazy("The proof is well formed"),
    "document": gettext_lazy("The file is the document of the proof (SHA-256)"),
    "path": gettext_lazy("The path leads from the document to the root"),
    "audit_head": gettext_lazy("The audit chain's head is in the same tree"),
    "op_return": gettext_lazy("The OP_RETURN script carries the root"),
    "published_root": gettext_lazy("The root is the one stored for that day"),
}


@require_http_methods(["GET", "POST"])
@module_required(Module.WEB3)
def proof_verify(request):
    form, result = VerifyForm(), None
    if request.method == "POST":
        form = VerifyForm(request.POST, request.FILES)
        if form.is_valid():
            proof = form.cleaned_data.get("proof")
            raw_proof = proof.read() if proof is not None else form.cleaned_data["proof_text"].encode("utf-8")
            verification = proofs.verify_document(
                form.cleaned_data["file"].read(), raw_proof, stored_root=proofs.stored_root_lookup
            )
            result = verification.as_dict()
            for check in result["checks"]:
                check["label"] = CHECK_LABELS.get(check["name"], check["name"])
            result["filename"] = form.cleaned_data["file"].name
    return render(request, "portal/proofs/verify.html", {"form": form, "result": result},
                  status=400 if form.errors else 200)  # fmt: skip
