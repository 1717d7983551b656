from hashinsight.reports import admin_reports  # noqa: F401
