"""API pagination: page numbers, checked as the schema documents them."""

from __future__ import annotations

import re

from rest_framework import exceptions, pagination


class Pagination(pagination.PageNumberPagination):
    """`{"count", "next", "previous", "results"}`; 50 per page, `page_size` up to 200.

    A `page` or `page_size` that is not a whole number of at least 1 is a 400, as the schema
    says; a page past the end is a 404; a `page_size` above 200 gives 200.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not re.fullmatch(r"[1-9][0-9]*", raw):  # any size: past the end is a 404
            raise exceptions.ValidationError({self.page_query_param: ["Enter a whole number of at least 1."]})
        return raw or 1

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise exceptions.ValidationError({self.page_size_query_param: ["Enter a whole number of at least 1."]})
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Results per page (default {self.page_size}, at most {self.max_page_size})."
        return parameters
