"""Portal routes of the intelligence layer's events part (curtailment events, response profiles and programmes;
namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import curtailment_events as ev
from hashinsight.portal.views import response_profiles as rp

urlpatterns: list = [
    path("curtailment/events/", ev.event_list, name="curtailment-event-list"),
    path("curtailment/events/new/", ev.event_create, name="curtailment-event-create"),
    path("curtailment/events/<int:pk>/", ev.event_detail, name="curtailment-event-detail"),
    path("curtailment/events/<int:pk>/end/", ev.event_end, name="curtailment-event-end"),
    path("curtailment/profiles/", rp.profile_list, name="response-profile-list"),
    path("curtailment/profiles/new/", rp.profile_create, name="response-profile-create"),
    path("curtailment/profiles/<int:pk>/edit/", rp.profile_edit, name="response-profile-edit"),
    path("curtailment/profiles/<int:pk>/delete/", rp.profile_delete, name="response-profile-delete"),
    path("curtailment/profiles/<int:pk>/default/", rp.profile_make_default, name="response-profile-default"),
    path("curtailment/programmes/", rp.program_list, name="dr-program-list"),
    path("curtailment/programmes/new/", rp.program_create, name="dr-program-create"),
    path("curtailment/programmes/<int:pk>/secret/", rp.program_secret, name="dr-program-secret"),
    path("curtailment/programmes/<int:pk>/rotate/", rp.program_rotate, name="dr-program-rotate"),
    path("curtailment/programmes/<int:pk>/active/", rp.program_set_active, name="dr-program-active"),
    path("curtailment/programmes/<int:pk>/delete/", rp.program_delete, name="dr-program-delete"),
]
