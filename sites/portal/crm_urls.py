"""Portal routes of CRM: deals and hosting contracts (owner: crm; namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import crm

urlpatterns: list = [
    path("crm/deals/", crm.deal_list, name="crm-deal-list"),
    path("crm/deals/new/", crm.deal_create, name="crm-deal-create"),
    path("crm/deals/<int:pk>/", crm.deal_detail, name="crm-deal-detail"),
    path("crm/deals/<int:pk>/edit/", crm.deal_edit, name="crm-deal-edit"),
    path("crm/deals/<int:pk>/stage/", crm.deal_stage, name="crm-deal-stage"),
    path("crm/deals/<int:pk>/convert/", crm.deal_convert, name="crm-deal-convert"),
    path("crm/contracts/", crm.contract_list, name="crm-contract-list"),
    path("crm/contracts/new/", crm.contract_create, name="crm-contract-create"),
    path("crm/contracts/<int:pk>/", crm.contract_detail, name="crm-contract-detail"),
    path("crm/contracts/<int:pk>/edit/", crm.contract_edit, name="crm-contract-edit"),
    path("crm/contracts/<int:pk>/activate/", crm.contract_activate, name="crm-contract-activate"),
    path("crm/contracts/<int:pk>/end/", crm.contract_end, name="crm-contract-end"),
    path("crm/contracts/<int:pk>/terminate/", crm.contract_terminate, name="crm-contract-terminate"),
    path("crm/contracts/<int:pk>/document/", crm.contract_document, name="crm-contract-document"),
    path("crm/contracts/<int:pk>/miners/", crm.contract_miners, name="crm-contract-miners"),
]
