"""The intelligence layer's admin: each part registers its models in its own module."""

from intelligence import admin_forecast, admin_market, admin_plans  # noqa: F401
