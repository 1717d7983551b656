"""The intelligence layer's admin: each part registers its models in its own module."""

from intelligence import (  # noqa: F401
    admin_events,
    admin_forecast,
    admin_health,
    admin_market,
    admin_plans,
    admin_profiles,
    admin_responder,
)
