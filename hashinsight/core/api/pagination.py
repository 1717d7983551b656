from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """``{count, next, previous, results}``; 20 rows by default, at most 100."""

    default_limit = 20
    max_limit = 100
